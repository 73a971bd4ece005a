package nodeagent

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// These tests run the agent's WireGuard half-passes (Sync before Set,
// Settle after it) on a real kernel in a fresh network namespace, with the
// userspace device (this kernel has no WireGuard module).

var (
	peerB1  = v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey1, Endpoint: "192.168.0.21:51871", AllowedIPs: []string{"192.168.0.21/32"}}
	peerC1  = v1alpha1.WireGuardPeer{Name: "c/c1", PublicKey: testKey2, Endpoint: "192.168.0.31:51871", AllowedIPs: []string{"192.168.0.31/32"}}
	peerB16 = v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey1, Endpoint: "[fd00::21]:51871", AllowedIPs: []string{"fd00::21/128"}}
)

// freshWireGuard is a WireGuard in a fresh namespace (closed and torn down
// at the end).
func freshWireGuard(t *testing.T) *WireGuard {
	t.Helper()
	freshKernel(t)
	key, err := LoadOrCreateWireGuardKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := NewWireGuard(key, "", nil)
	t.Cleanup(func() { w.Close(); _ = TeardownWireGuard() })
	return w
}

// table is the agent's WireGuard table as ip(8) prints it.
func table(t *testing.T) string {
	t.Helper()
	// No IPv6 route in the table yet: ip(8) says the table does not exist.
	v6, _ := exec.Command("ip", "-6", "route", "show", "table", "4876").Output()
	return ip(t, "route", "show", "table", "4876") + string(v6)
}

// pass runs one WireGuard pass around a Set that returned setErr.
func pass(t *testing.T, w *WireGuard, spec *v1alpha1.NodeConfigSpec, setErr error) error {
	t.Helper()
	if err := w.Sync(spec); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return w.Settle(spec, setErr)
}

// TestLinuxWireGuardRemovesAfterSet: a peer leaving the config (failover,
// its key gone) keeps its route into the device and its blackhole until
// Set has succeeded: before Set the FDB still sends VXLAN to it, and a
// refused Set restores that FDB. Before the fix Sync deleted them ahead of
// Set, so the VXLAN left in clear.
func TestLinuxWireGuardRemovesAfterSet(t *testing.T) {
	w := freshWireGuard(t)
	if err := pass(t, w, wgSpec(peerB1, peerC1), nil); err != nil {
		t.Fatal(err)
	}
	both := table(t)
	if strings.Count(both, "192.168.0.21") != 2 || strings.Count(both, "192.168.0.31") != 2 {
		t.Fatalf("table:\n%s", both)
	}
	next := wgSpec(peerB1)
	if err := w.Sync(next); err != nil {
		t.Fatal(err)
	}
	if got := table(t); got != both {
		t.Errorf("before Set, the leaving peer's routes changed:\n%s\nwant\n%s", got, both)
	}
	if err := w.Settle(next, errors.New("Set refused")); err != nil {
		t.Fatal(err)
	}
	if got := table(t); got != both {
		t.Errorf("after a failed Set, the leaving peer's routes changed:\n%s\nwant\n%s", got, both)
	}
	if err := w.Settle(next, nil); err != nil {
		t.Fatal(err)
	}
	if got := table(t); strings.Contains(got, "192.168.0.31") || strings.Count(got, "192.168.0.21") != 2 {
		t.Errorf("after Set, table:\n%s\nwant only 192.168.0.21's", got)
	}
	// Encryption off: everything goes, after Set only.
	if err := w.Sync(nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table(t), "192.168.0.21") || !strings.Contains(ip(t, "rule"), "4876") {
		t.Error("encryption off: removed before Set")
	}
	if err := w.Settle(nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := table(t); got != "" || strings.Contains(ip(t, "rule"), "4876") || strings.Contains(ip(t, "link"), "vx-wg") {
		t.Errorf("encryption off: table %q, rules\n%s", got, ip(t, "rule"))
	}
}

// TestLinuxWireGuardNoDeviceFailsClosed: when the device cannot be made,
// the rule and the blackholes are installed anyway (nothing to the peer
// leaves in clear), the pass goes on, and the failure is reported. Before
// the fix Sync returned first: no rule, no blackhole, the pass skipped.
func TestLinuxWireGuardNoDeviceFailsClosed(t *testing.T) {
	w := freshWireGuard(t)
	ip(t, "link", "add", "vx-wg", "type", "veth", "peer", "name", "vx-wgp") // not Kosmos's: refused
	err := pass(t, w, wgSpec(peerB1), nil)
	if err == nil || !strings.Contains(err.Error(), "a veth link of that name exists") {
		t.Errorf("reported %v", err)
	}
	if got := table(t); !strings.Contains(got, "blackhole 192.168.0.21") || strings.Contains(got, "dev vx-wg") {
		t.Errorf("table:\n%s\nwant the blackhole alone", got)
	}
	if rules := ip(t, "rule"); !strings.Contains(rules, "4876:\tfrom all ipproto udp dport 4876 lookup 4876 proto 75") {
		t.Errorf("rules:\n%s", rules)
	}
	if ip(t, "link", "show", "vx-wg", "type", "veth") == "" {
		t.Error("the foreign vx-wg was touched")
	}
}

// TestLinuxWireGuardRecreated: a device deleted from outside is made again
// on the next pass, with its peers and routes. Before the fix the agent
// kept its handle to the dead device and every pass failed.
func TestLinuxWireGuardRecreated(t *testing.T) {
	w := freshWireGuard(t)
	spec := wgSpec(peerB1)
	if err := pass(t, w, spec, nil); err != nil {
		t.Fatal(err)
	}
	ip(t, "link", "del", "vx-wg")
	if err := pass(t, w, spec, nil); err != nil {
		t.Errorf("pass after the device was deleted: %v", err)
	}
	if got := table(t); !strings.Contains(got, "192.168.0.21 dev vx-wg") {
		t.Errorf("table:\n%s", got)
	}
	if st := w.Status(); st.Peers != 1 || st.Path != v1alpha1.WireGuardPathUserspace {
		t.Errorf("status %+v", st)
	}
}

// TestLinuxWireGuardPeerDrift: a peer removed from the device from outside
// is set again on the next pass (the device's peers are read, not a cache
// of what was sent). Before the fix the agent never repaired it.
func TestLinuxWireGuardPeerDrift(t *testing.T) {
	w := freshWireGuard(t)
	spec := wgSpec(peerB1)
	if err := pass(t, w, spec, nil); err != nil {
		t.Fatal(err)
	}
	dev := w.dev.(*userspaceDevice)
	if err := dev.dev.IpcSet("public_key=" + strings.Repeat("00", 31) + "01\nremove=true\n"); err != nil {
		t.Fatal(err)
	}
	if have, _ := dev.peers(); len(have) != 0 {
		t.Fatalf("peer not removed: %v", have)
	}
	if err := pass(t, w, spec, nil); err != nil {
		t.Fatal(err)
	}
	if have, _ := dev.peers(); len(have) != 1 {
		t.Errorf("peers after the pass: %v, want b1's back", have)
	}
}

// TestLinuxWireGuardLooseRPFilter: under conf.all.rp_filter=1 the device
// gets loose filtering (2), as the VXLAN devices do, so decrypted VXLAN is
// not dropped. Before the fix it was left strict.
func TestLinuxWireGuardLooseRPFilter(t *testing.T) {
	w := freshWireGuard(t)
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/all/rp_filter", []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pass(t, w, wgSpec(peerB1), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile("/proc/sys/net/ipv4/conf/vx-wg/rp_filter"); strings.TrimSpace(string(got)) != "2" {
		t.Errorf("vx-wg rp_filter = %s, want 2", got)
	}
}

// TestLinuxWireGuardQuietRepeat: a pass that changes nothing writes no
// route (an IPv6 RouteReplace emits RTM_NEWROUTE even when identical, and
// the agent's own netlink subscription then wakes a pass, forever). Before
// the fix every pass replaced every route.
func TestLinuxWireGuardQuietRepeat(t *testing.T) {
	w := freshWireGuard(t)
	spec := wgSpec(peerB16, peerC1)
	if err := pass(t, w, spec, nil); err != nil {
		t.Fatal(err)
	}
	if got := table(t); !strings.Contains(got, "fd00::21 dev vx-wg") {
		t.Fatalf("table:\n%s", got)
	}
	updates, done := make(chan netlink.RouteUpdate, 64), make(chan struct{})
	defer close(done)
	if err := netlink.RouteSubscribe(updates, done); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := pass(t, w, spec, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A marker route of our own ends the count: every event before it
	// came from the passes.
	ip(t, "route", "add", "blackhole", "198.51.100.1/32", "table", "4877")
	n := 0
	timeout := time.After(5 * time.Second)
	for {
		select {
		case u := <-updates:
			if u.Table == 4877 {
				t.Logf("route events from 3 repeated passes: %d", n)
				if n != 0 {
					t.Errorf("%d route events from passes that changed nothing", n)
				}
				return
			}
			n++
		case <-timeout:
			t.Fatal("marker route event not seen")
		}
	}
}

// TestLinuxWireGuardForeignUntouched: a rule at the agent's priority and a
// route in its table that Kosmos did not make stay through passes and the
// teardown. Before the fix both were deleted.
func TestLinuxWireGuardForeignUntouched(t *testing.T) {
	w := freshWireGuard(t)
	ip(t, "rule", "add", "priority", "4876", "lookup", "100")
	ip(t, "route", "add", "10.9.9.0/24", "dev", "eth0", "table", "4876", "proto", "static")
	if err := pass(t, w, wgSpec(peerB1), nil); err != nil {
		t.Fatal(err)
	}
	if err := pass(t, w, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := ip(t, "rule"); !strings.Contains(got, "4876:\tfrom all lookup 100") || strings.Contains(got, "lookup 4876") {
		t.Errorf("rules:\n%s", got)
	}
	if got := table(t); !strings.HasPrefix(got, "10.9.9.0/24 dev eth0 proto static") || strings.Count(got, "\n") != 1 {
		t.Errorf("table:\n%q", got)
	}
}
