package nodeagent

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

const (
	testKey1 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="
	testKey2 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI="
)

func wgSpec(peers ...v1alpha1.WireGuardPeer) *v1alpha1.NodeConfigSpec {
	return &v1alpha1.NodeConfigSpec{
		Devices: []v1alpha1.Device{{Name: v1alpha1.DeviceBridge, VNI: 54, Port: 4876, MAC: "02:00:00:00:00:01", UnderlayIP: "192.168.0.11", Addresses: []string{"220.168.0.11/8"}}},
		FDB: []v1alpha1.FDBEntry{
			{MAC: "02:00:00:00:00:02", Dst: "192.168.0.21", Device: v1alpha1.DeviceBridge},
			{MAC: "02:00:00:00:00:03", Dst: "192.168.0.31", Device: v1alpha1.DeviceBridge},
		},
		WireGuard: &v1alpha1.WireGuardSpec{Device: v1alpha1.DeviceWireGuard, Port: 51871, FirewallMark: 0x4b57, Peers: peers},
	}
}

// TestWireGuardConfig: what the agent makes of a good spec (peers, allowed
// host prefixes, the ports its rule selects); a bad peer is dropped alone,
// its host prefixes kept for the blackhole (fail closed), and reported; a
// bad device part refuses the config.
func TestWireGuardConfig(t *testing.T) {
	good := v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey1, Endpoint: "192.168.0.21:51871", AllowedIPs: []string{"192.168.0.21/32"}}
	other := v1alpha1.WireGuardPeer{Name: "c/c1", PublicKey: testKey2, Endpoint: "192.168.0.31:51871", AllowedIPs: []string{"192.168.0.31/32"}}
	for _, c := range []struct {
		name    string
		peer    v1alpha1.WireGuardPeer
		dropped string // the drop's text, or "" for kept
		closed  string // the dropped peer's prefixes kept for the blackhole
	}{
		{"a good peer", good, "", ""},
		{"a wide allowed range", v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey1, Endpoint: "192.168.0.21:51871", AllowedIPs: []string{"0.0.0.0/0"}}, "not a host prefix", ""},
		{"a bad key", v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: "short", Endpoint: "192.168.0.21:51871", AllowedIPs: []string{"192.168.0.21/32"}}, "not a base64 key", "192.168.0.21/32"},
		{"the other peer's key", v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey2, Endpoint: "192.168.0.21:51871", AllowedIPs: []string{"192.168.0.21/32"}}, "another peer has the same key", "192.168.0.21/32"},
		{"no port", v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey1, Endpoint: "192.168.0.21", AllowedIPs: []string{"192.168.0.21/32"}}, "not ip:port", "192.168.0.21/32"},
		{"no allowed IPs", v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey1, Endpoint: "192.168.0.21:51871"}, "allowedIPs: empty", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := wgSpec(c.peer, other)
			cfg, err := wireGuardConfig(spec)
			if verr := Validate(spec); err != nil || verr != nil {
				t.Fatalf("refused: %v / %v", err, verr)
			}
			if cfg.ports[4] != 4876 || cfg.device != v1alpha1.DeviceWireGuard {
				t.Errorf("config %+v", cfg)
			}
			derr := cfg.droppedError()
			if c.dropped == "" {
				if len(cfg.peers) != 2 || derr != nil {
					t.Errorf("peers %d, dropped %v; want both kept", len(cfg.peers), derr)
				}
				return
			}
			wantPeers := 1
			if c.name == "the other peer's key" {
				wantPeers = 0 // both holders of the key are dropped
			}
			if len(cfg.peers) != wantPeers || derr == nil || !strings.Contains(derr.Error(), c.dropped) || !strings.Contains(derr.Error(), "b/b1") {
				t.Errorf("peers %d, dropped %v; want %d kept and a drop with %q", len(cfg.peers), derr, wantPeers, c.dropped)
			}
			var closed []string
			for _, p := range cfg.closed {
				closed = append(closed, p.String())
			}
			if got := strings.Join(closed, ","); !strings.HasPrefix(got, c.closed) {
				t.Errorf("closed %q, want %q first", got, c.closed)
			}
		})
	}
	spec := wgSpec(good)
	spec.WireGuard.Port = 4876
	if _, err := wireGuardConfig(spec); err == nil || !strings.Contains(err.Error(), "also the VXLAN port") {
		t.Errorf("WireGuard on the VXLAN port: %v", err)
	}
	spec = wgSpec(good)
	spec.WireGuard.Device = "eth0"
	if _, err := wireGuardConfig(spec); err == nil || !strings.Contains(err.Error(), "not a device the agent may own") {
		t.Errorf("foreign device: %v", err)
	}
}

// TestWireGuardChanges: the pure comparisons behind the two halves of a
// pass: what is added before Set, what is removed after it; a peer or a
// route held as wanted is not written again.
func TestWireGuardChanges(t *testing.T) {
	cfg, err := wireGuardConfig(wgSpec(
		v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey1, Endpoint: "192.168.0.21:51871", AllowedIPs: []string{"192.168.0.21/32"}},
		v1alpha1.WireGuardPeer{Name: "c/c1", PublicKey: "bad", Endpoint: "192.168.0.31:51871", AllowedIPs: []string{"192.168.0.31/32"}}))
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := cfg.peers[0].key, [32]byte{31: 2}
	same := peerState(cfg.peers[0].endpoint, wireGuardKeepalive, cfg.peers[0].allowed)
	for _, c := range []struct {
		name         string
		have         map[[32]byte]string
		upsert, gone int
	}{
		{"empty device (a restarted agent)", nil, 1, 0},
		{"as wanted", map[[32]byte]string{k1: same}, 0, 0},
		{"allowed IPs changed from outside", map[[32]byte]string{k1: "192.168.0.21:51871 keepalive 25 allowed 10.0.0.0/8"}, 1, 0},
		{"a peer no longer wanted", map[[32]byte]string{k1: same, k2: same}, 0, 1},
	} {
		up, gone := peerChanges(c.have, cfg.peers)
		if len(up) != c.upsert || len(gone) != c.gone {
			t.Errorf("%s: upsert %d, remove %d; want %d, %d", c.name, len(up), len(gone), c.upsert, c.gone)
		}
	}
	dump := "private_key=00\nlisten_port=51871\npublic_key=" + strings.Repeat("00", 31) + "01\nendpoint=192.168.0.21:51871\npersistent_keepalive_interval=25\nallowed_ip=192.168.0.21/32\nlast_handshake_time_sec=0\n"
	if got := parseUAPIPeers(dump); got[k1] != same || len(got) != 1 {
		t.Errorf("parsed %v, want %s", got, same)
	}

	pfx := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	withDev := wireGuardRoutes(cfg, 7)
	var names []string
	for _, r := range withDev {
		names = append(names, fmt.Sprintf("%s bh=%v dev=%d", r.dst, r.blackhole, r.dev))
	}
	if got := strings.Join(names, ","); got != "192.168.0.21/32 bh=false dev=7,192.168.0.21/32 bh=true dev=0,192.168.0.31/32 bh=true dev=0" {
		t.Errorf("routes %s (the dropped peer gets the blackhole only)", got)
	}
	if n := len(wireGuardRoutes(cfg, 0)); n != 2 {
		t.Errorf("no device: %d routes, want the 2 blackholes", n)
	}
	old := tableRoute{dst: pfx("192.168.0.41/32"), dev: 7}
	add, del := routeChanges(append(slices.Clone(withDev), old), withDev)
	if len(add) != 0 || len(del) != 1 || del[0] != old {
		t.Errorf("held as wanted plus one: add %v, del %v", add, del)
	}
	add, del = routeChanges([]tableRoute{{dst: pfx("192.168.0.21/32"), dev: 5}}, withDev)
	if len(add) != 3 || len(del) != 1 {
		t.Errorf("device recreated: add %v, del %v", add, del)
	}
}

// TestWireGuardDesired: on a node with a WireGuard device, VXLAN from an
// encrypted peer is accepted only through the device, from a clear peer as
// before; the cross-cluster device leaves room for WireGuard's header; and
// the table holds a device route and a blackhole per peer.
func TestWireGuardDesired(t *testing.T) {
	spec := wgSpec(v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey1, Endpoint: "192.168.0.21:51871", AllowedIPs: []string{"192.168.0.21/32"}})
	s := Desired(spec)
	var input []string
	for _, c := range s.Chains {
		if c.Key() == "ipv4/filter/"+ChainInput {
			input = c.Rules
		}
	}
	want := []string{
		"-p udp -m udp --dport 4876 -m set --match-set KOSMOS-PEER4-4876 src -j RETURN",
		"-i vx-wg -p udp -m udp --dport 4876 -m set --match-set KOSMOS-WGPEER4-4876 src -j RETURN",
		"-i vx-wg1 -p udp -m udp --dport 4876 -m set --match-set KOSMOS-WGPEER4-4876 src -j RETURN", // the rotation device
		"-p udp -m udp --dport 4876 -j DROP",
	}
	if strings.Join(input, "\n") != strings.Join(want, "\n") {
		t.Errorf("KOSMOS-INPUT:\n%s\nwant\n%s", strings.Join(input, "\n"), strings.Join(want, "\n"))
	}
	// The encrypted peer is in the set matched through the device only.
	var sets []string
	for _, x := range s.Sets {
		sets = append(sets, fmt.Sprintf("%s %v", x.Name, x.Members))
	}
	if want := []string{"KOSMOS-PEER4-4876 [192.168.0.31]", "KOSMOS-RANGE4 [220.0.0.0/8]", "KOSMOS-WGPEER4-4876 [192.168.0.21]"}; !slices.Equal(sets, want) {
		t.Errorf("sets %q, want %q", sets, want)
	}
	if l := s.Links[0]; l.Overhead != v1alpha1.WireGuardOverheadBytes || l.MTU != 0 {
		t.Errorf("link %+v: want overhead %d on a derived MTU", l, v1alpha1.WireGuardOverheadBytes)
	}
	spec.Devices[0].MTU = 1450
	if l := Desired(spec).Links[0]; l.MTU != 1450-v1alpha1.WireGuardOverheadBytes {
		t.Errorf("explicit MTU 1450 → %d, want %d", l.MTU, 1450-v1alpha1.WireGuardOverheadBytes)
	}
	cfg, err := wireGuardConfig(spec)
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, r := range wireGuardRoutes(cfg, 7) {
		routes = append(routes, r.dst.String()+map[bool]string{true: " blackhole", false: " dev"}[r.blackhole])
	}
	if got := strings.Join(routes, ","); got != "192.168.0.21/32 dev,192.168.0.21/32 blackhole" {
		t.Errorf("table routes %s", got)
	}
}

// TestUAPIPeers: peers that stay are set in place (their sessions kept),
// others removed.
func TestUAPIPeers(t *testing.T) {
	spec := wgSpec(v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey1, Endpoint: "192.168.0.21:51871", AllowedIPs: []string{"192.168.0.21/32"}})
	cfg, err := wireGuardConfig(spec)
	if err != nil {
		t.Fatal(err)
	}
	gone, _ := wireGuardConfig(wgSpec(v1alpha1.WireGuardPeer{Name: "c/c1", PublicKey: testKey2, Endpoint: "192.168.0.31:51871", AllowedIPs: []string{"192.168.0.31/32"}}))
	have := map[[32]byte]bool{cfg.peers[0].key: true, gone.peers[0].key: true}
	got := uapiPeers(have, cfg.peers)
	want := "public_key=" + strings.Repeat("00", 31) + "01\nendpoint=192.168.0.21:51871\npersistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=192.168.0.21/32\n" +
		"public_key=" + strings.Repeat("00", 31) + "02\nremove=true\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestWireGuardKey: made once with mode 0600, the same on the next start,
// refused when others may read it; String never shows the private key.
func TestWireGuardKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	k1, err := LoadOrCreateWireGuardKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, WireGuardKeyFile)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v: want mode 0600", fi.Mode(), err)
	}
	k2, err := LoadOrCreateWireGuardKey(dir)
	if err != nil || k2.PublicKey() != k1.PublicKey() || len(k1.PublicKey()) != v1alpha1.WireGuardPublicKeyLength {
		t.Fatalf("second start: %v, %s vs %s", err, k2.PublicKey(), k1.PublicKey())
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(k1.String(), strings.TrimSpace(string(data))) {
		t.Error("String prints the private key")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateWireGuardKey(dir); err == nil || !strings.Contains(err.Error(), "others may read it") {
		t.Errorf("a world-readable key: %v", err)
	}
}

// TestWireGuardKeyFileChecks: a key file that is a symbolic link (to a key
// planted elsewhere), not owned by the agent's user, or in a state
// directory others may write to is refused. Before the fix the link was
// followed and only the mode was checked, with a second lookup by path.
func TestWireGuardKeyFileChecks(t *testing.T) {
	base := t.TempDir()
	planted := filepath.Join(base, "planted")
	if _, err := LoadOrCreateWireGuardKey(planted); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(planted, WireGuardKeyFile), filepath.Join(dir, WireGuardKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateWireGuardKey(dir); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("a symlinked key: %v", err)
	}
	if err := os.Chown(filepath.Join(planted, WireGuardKeyFile), 4242, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateWireGuardKey(planted); err == nil || !strings.Contains(err.Error(), "owned by uid 4242") {
		t.Errorf("a key of another user: %v", err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateWireGuardKey(open); err == nil || !strings.Contains(err.Error(), "only its owner may write to") {
		t.Errorf("a world-writable state directory: %v", err)
	}
}

// TestWireGuardConfigNextKeys: a peer's next key is taken up only when it
// is a key no other peer holds (as its key or its next key) and not one of
// the node's own; otherwise it is ignored and the peer keeps its key.
func TestWireGuardConfigNextKeys(t *testing.T) {
	const k3, k4 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAM=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ="
	own := [32]byte{31: 9}
	ownB64 := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAk="
	peer := func(name, key, next, ip string) v1alpha1.WireGuardPeer {
		return v1alpha1.WireGuardPeer{Name: name, PublicKey: key, NextPublicKey: next, Endpoint: ip + ":51871", AllowedIPs: []string{ip + "/32"}}
	}
	for _, c := range []struct {
		name   string
		b, c   string // next keys of b/b1 and c/c1
		wantB  bool   // b/b1 keeps a next key
		wantC  bool
		reason string
	}{
		{"b rotates", k3, "", true, false, ""},
		{"both rotate", k3, k4, true, true, ""},
		{"b's next is c's key", testKey2, "", false, false, ""},
		{"the same next key twice", k3, k3, false, false, ""},
		{"b's next is the node's own key", ownB64, "", false, false, "own key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := wireGuardConfig(wgSpec(peer("b/b1", testKey1, c.b, "192.168.0.21"), peer("c/c1", testKey2, c.c, "192.168.0.31")))
			if err != nil {
				t.Fatal(err)
			}
			cfg.dropOwnNext(own)
			if len(cfg.peers) != 2 {
				t.Fatalf("peers %d, want 2 (a bad next key never drops a peer)", len(cfg.peers))
			}
			if cfg.peers[0].hasNext != c.wantB || cfg.peers[1].hasNext != c.wantC {
				t.Errorf("next taken up: b %v c %v, want %v %v", cfg.peers[0].hasNext, cfg.peers[1].hasNext, c.wantB, c.wantC)
			}
			if derr := cfg.droppedError(); (c.reason == "") != (derr == nil) || (derr != nil && !strings.Contains(derr.Error(), c.reason)) {
				t.Errorf("reported %v, want %q", derr, c.reason)
			}
		})
	}
}
