package nodeagent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// ip runs ip(8) in the current network namespace (the test's thread is in
// it, and children inherit it) and fails the test on error.
func ip(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %v: %v %s", args, err, out)
	}
	return string(out)
}

// TestLinuxForeignRouteUntouched: on a real kernel, routes of another owner
// (proto static, one at the agent's metric, one at another metric) to
// destinations the NodeConfig asks for are refused, reported, and left as
// they are by the pass, by its repeat and by a teardown. Before the fix the
// agent replaced the first (RouteReplace matches on table, destination and
// metric, not protocol), so it became the agent's and the teardown deleted
// it.
func TestLinuxForeignRouteUntouched(t *testing.T) {
	finding(t, "kernel: routes exclusive, foreign never taken")
	lk := freshKernel(t)
	spec := bigConfig(3)
	ip(t, "route", "add", spec.Routes[0].Dst, "via", "192.168.0.2", "dev", "eth0", "proto", "static")
	ip(t, "route", "add", spec.Routes[1].Dst, "via", "192.168.0.3", "dev", "eth0", "proto", "static", "metric", "100")
	foreign := func() string {
		return ip(t, "route", "show", spec.Routes[0].Dst) + ip(t, "route", "show", spec.Routes[1].Dst)
	}
	before := foreign()
	for pass := range 2 {
		res, err := Set(lk, spec)
		var taken *RouteTakenError
		if !errors.As(err, &taken) || len(res.Failed) != 2 || !strings.Contains(err.Error(), "another owner (proto static dev eth0)") {
			t.Errorf("pass %d: failed %v, err %v; want both foreign destinations refused", pass, res.Failed, err)
		}
		if got := foreign(); got != before {
			t.Errorf("pass %d: foreign routes\n%s\nwant\n%s", pass, got, before)
		}
	}
	if ours := ip(t, "route", "show", "proto", "75"); strings.Count(ours, "\n") != 1 || !strings.Contains(ours, spec.Routes[2].Dst) {
		t.Errorf("the agent's routes:\n%s\nwant only %s", ours, spec.Routes[2].Dst)
	}
	if _, err := Teardown(lk); err != nil {
		t.Fatal(err)
	}
	if got := foreign(); got != before {
		t.Errorf("after teardown: foreign routes\n%s\nwant\n%s", got, before)
	}
}

// TestLinuxRouteReplaceOwn: an exclusive add that finds the agent's own
// route to the destination (a pass that raced, a crashed agent's leftover)
// replaces it; a new next hop for a destination the agent holds is set in
// place.
func TestLinuxRouteReplaceOwn(t *testing.T) {
	finding(t, "kernel: routes exclusive, foreign never taken")
	lk := freshKernel(t)
	spec := bigConfig(2)
	if _, err := Set(lk, spec); err != nil {
		t.Fatal(err)
	}
	r := Route{Dst: spec.Routes[0].Dst, Via: spec.Neighbors[1].IP, Dev: "vx-bridge"}
	if err := lk.Apply(Op{Kind: OpAdd, Route: &r}); err != nil {
		t.Fatalf("add over the agent's own route: %v", err)
	}
	if got := ip(t, "route", "show", r.Dst); !strings.Contains(got, "via "+r.Via) {
		t.Errorf("route %s", got)
	}
	spec.Routes[0].Via = spec.Neighbors[0].IP
	if res, err := Set(lk, spec); err != nil || len(res.Applied) != 1 || res.Applied[0].Kind != OpSet {
		t.Errorf("writes %v, err %v; want one set", res.Applied, err)
	}
}

// TestLinuxHostOverlapRefused: on a real kernel, a destination inside the
// network of the host's eth0 (192.168.0.1/24) is refused before any write.
func TestLinuxHostOverlapRefused(t *testing.T) {
	finding(t, "kernel: default/host-overlapping claims refused")
	lk := freshKernel(t)
	spec := bigConfig(2)
	spec.Routes[0].Dst = "192.168.0.128/25"
	res, err := Set(lk, spec)
	if err == nil || !strings.Contains(err.Error(), "route to 192.168.0.128/25 overlaps the host's address 192.168.0.1/24") || len(res.Applied) != 0 {
		t.Errorf("applied %v, err %v; want the config refused", res.Applied, err)
	}
	if links := ip(t, "-o", "link"); strings.Contains(links, "vx-") {
		t.Errorf("a refused config wrote:\n%s", links)
	}
}

// TestLinuxNATChainNeverPartial: while Set rewrites the NAT chains again
// and again (twenty 1:1 mappings moving between two global ranges), another
// process reading the nat table sees KOSMOS-POSTROUTING whole, old or new,
// never empty or half filled: each table is written in one
// iptables-restore transaction. Before the fix the chain was cleared, then
// refilled one rule per exec.
func TestLinuxNATChainNeverPartial(t *testing.T) {
	finding(t, "kernel: NAT chains written atomically")
	lk := freshKernel(t)
	specs := [2]*v1alpha1.NodeConfigSpec{natConfig(1), natConfig(1)}
	for g, spec := range specs {
		spec.NAT.Masquerade = nil
		spec.NAT.Mappings = nil
		for i := range 20 {
			spec.NAT.Mappings = append(spec.NAT.Mappings, v1alpha1.NATMapping{RealCIDR: fmt.Sprintf("10.%d.0.0/16", 100+i), GlobalCIDR: fmt.Sprintf("100.%d.0.0/16", 64+g*30+i)})
		}
	}
	var whole [2]string
	for g, spec := range specs {
		for _, c := range Desired(spec).Chains {
			if c.Family == "ipv4" && c.Name == ChainPostrouting {
				whole[g] = strings.Join(c.Rules, "\n")
			}
		}
	}
	if _, err := Set(lk, specs[0]); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	seen := make(chan []string, 1)
	go func() {
		var bad []string
		ns := fmt.Sprintf("kbench-%d", os.Getpid())
		for reads := 0; ; reads++ {
			select {
			case <-stop:
				seen <- append(bad, fmt.Sprintf("%d reads", reads))
				return
			default:
			}
			out, err := exec.Command("ip", "netns", "exec", ns, "iptables-save", "-t", "nat").Output()
			if err != nil {
				continue
			}
			for _, c := range parseSave("ipv4", "nat", string(out)) {
				if got := strings.Join(c.Rules, "\n"); c.Name == ChainPostrouting && got != whole[0] && got != whole[1] {
					bad = append(bad, got)
				}
			}
		}
	}()
	for i := range 10 {
		if _, err := Set(lk, specs[(i+1)%2]); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	res := <-seen
	t.Log(res[len(res)-1])
	if len(res) > 1 {
		t.Errorf("KOSMOS-POSTROUTING seen partial %d times, e.g. %d rules (of 40):\n%s", len(res)-1, len(strings.Fields(res[0]))/7, res[0])
	}
}

// forwardCounters returns the packet counters of FORWARD's policy and of
// the rules of chain whose text contains match, read with iptables -L.
func forwardCounters(t *testing.T, chain, match string) (policy, rule int) {
	t.Helper()
	out, err := exec.Command("iptables", "-t", "filter", "-nvxL", "FORWARD").Output()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscanf(strings.SplitN(string(out), "policy DROP ", 2)[1], "%d", &policy); err != nil {
		t.Fatalf("FORWARD policy counter in %s: %v", out, err)
	}
	if out, err = exec.Command("iptables", "-t", "filter", "-nvxL", chain).Output(); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		var n int
		if strings.Contains(l, match) {
			if _, err := fmt.Sscanf(l, "%d", &n); err == nil {
				rule += n
			}
		}
	}
	return policy, rule
}

// TestLinuxForwardBehindPolicy: with real packets forwarded from a pod
// namespace into vx-bridge, under FORWARD policy DROP and a "CNI" chain
// that drops traffic to one remote range: Kosmos's jump sits behind the
// CNI's, so the CNI's drop still applies; a known pod source to a routed
// destination is accepted by Kosmos's chains; a source outside the known
// ranges is not (the policy drops it). Before the fix KOSMOS-FORWARD was
// jumped to first and accepted anything in or out of a vx- device.
func TestLinuxForwardBehindPolicy(t *testing.T) {
	finding(t, "kernel: forward chain behind policy, known ranges only")
	lk := freshKernel(t)
	pod := fmt.Sprintf("kpod-%d", os.Getpid())
	_ = exec.Command("ip", "netns", "del", pod).Run()
	ip(t, "netns", "add", pod)
	defer func() { _ = exec.Command("ip", "netns", "del", pod).Run() }()
	ip(t, "link", "add", "vpod", "type", "veth", "peer", "name", "eth0", "netns", pod)
	for _, args := range [][]string{
		{"addr", "add", "10.244.1.1/24", "dev", "vpod"}, {"addr", "add", "10.50.0.1/24", "dev", "vpod"}, {"link", "set", "vpod", "up"},
		{"-n", pod, "addr", "add", "10.244.1.2/24", "dev", "eth0"}, {"-n", pod, "addr", "add", "10.50.0.2/24", "dev", "eth0"},
		{"-n", pod, "link", "set", "eth0", "up"}, {"-n", pod, "route", "add", "default", "via", "10.244.1.1"},
	} {
		ip(t, args...)
	}
	for _, args := range [][]string{{"-P", "FORWARD", "DROP"}, {"-N", "CNI-POLICY"}, {"-A", "CNI-POLICY", "-d", "172.16.1.0/24", "-j", "DROP"}, {"-A", "FORWARD", "-j", "CNI-POLICY"}} {
		if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
			t.Fatalf("iptables %v: %v %s", args, err, out)
		}
	}
	spec := bigConfig(3)
	spec.LocalCIDRs = []string{"10.244.0.0/16"}
	if _, err := Set(lk, spec); err != nil {
		t.Fatal(err)
	}
	if rules, _ := exec.Command("iptables", "-S", "FORWARD").Output(); !strings.HasSuffix(string(rules), "-A FORWARD -j CNI-POLICY\n-A FORWARD -j KOSMOS-FORWARD\n") {
		t.Errorf("FORWARD:\n%s\nwant the CNI's jump first, Kosmos's last", rules)
	}
	send := func(from, to string) {
		_ = exec.Command("ip", "netns", "exec", pod, "ping", "-c", "1", "-W", "0.3", "-I", from, to).Run()
	}
	for _, c := range []struct {
		name, from, to string
		policyDrops    bool
		cniDrops       bool
	}{
		{"known source to a routed range", "10.244.1.2", "172.16.0.5", false, false},
		{"routed range the CNI drops", "10.244.1.2", "172.16.1.5", false, true},
		{"unknown source", "10.50.0.2", "172.16.2.5", true, false},
	} {
		policy0, cni0 := forwardCounters(t, "CNI-POLICY", "172.16.1.0/24")
		_, kosmos0 := forwardCounters(t, ChainForwardDst, "ACCEPT")
		send(c.from, c.to)
		policy1, cni1 := forwardCounters(t, "CNI-POLICY", "172.16.1.0/24")
		_, kosmos1 := forwardCounters(t, ChainForwardDst, "ACCEPT")
		accepted := kosmos1 > kosmos0
		if c.policyDrops != (policy1 > policy0) || c.cniDrops != (cni1 > cni0) || accepted != (!c.policyDrops && !c.cniDrops) {
			t.Errorf("%s: policy drops %d, CNI drops %d, Kosmos accepts %d; want policy %v, CNI %v", c.name, policy1-policy0, cni1-cni0, kosmos1-kosmos0, c.policyDrops, c.cniDrops)
		}
	}
}

// TestLinuxForwardJumpMoved: a jump to KOSMOS-FORWARD ahead of other rules
// (where agents before issue 16 inserted it) is moved behind them, in the
// same transaction as the chain's rules; then nothing changes.
func TestLinuxForwardJumpMoved(t *testing.T) {
	finding(t, "kernel: forward chain behind policy, known ranges only")
	lk := freshKernel(t)
	spec := bigConfig(2)
	if _, err := Set(lk, spec); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-D", "FORWARD", "-j", ChainForward}, {"-A", "FORWARD", "-s", "10.9.9.0/24", "-j", "DROP"}, {"-I", "FORWARD", "1", "-j", ChainForward}} {
		if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
			t.Fatalf("iptables %v: %v %s", args, err, out)
		}
	}
	res, err := Set(lk, spec)
	if err != nil || len(res.Applied) != 1 || res.Applied[0].Chains == nil {
		t.Fatalf("writes %v, err %v; want one chain transaction", res.Applied, err)
	}
	if rules, _ := exec.Command("iptables", "-S", "FORWARD").Output(); !strings.HasSuffix(string(rules), "-A FORWARD -s 10.9.9.0/24 -j DROP\n-A FORWARD -j KOSMOS-FORWARD\n") {
		t.Errorf("FORWARD:\n%s", rules)
	}
	if res, err := Set(lk, spec); err != nil || len(res.Applied) != 0 {
		t.Errorf("repeat: writes %v, err %v", res.Applied, err)
	}
	// A host firewall that ends FORWARD with a catch-all REJECT (the RHEL
	// default): the jump goes right ahead of it, not behind it where nothing
	// reaches, and stays there.
	for _, args := range [][]string{{"-D", "FORWARD", "-j", ChainForward}, {"-A", "FORWARD", "-j", "REJECT", "--reject-with", "icmp-host-prohibited"},
		{"-A", "FORWARD", "-s", "10.8.8.0/24", "-j", "ACCEPT"}, {"-A", "FORWARD", "-j", ChainForward}} {
		if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
			t.Fatalf("iptables %v: %v %s", args, err, out)
		}
	}
	if res, err := Set(lk, spec); err != nil || len(res.Applied) != 1 {
		t.Fatalf("catch-all: writes %v, err %v; want one chain transaction", res.Applied, err)
	}
	if rules, _ := exec.Command("iptables", "-S", "FORWARD").Output(); !strings.HasSuffix(string(rules),
		"-A FORWARD -s 10.9.9.0/24 -j DROP\n-A FORWARD -j KOSMOS-FORWARD\n-A FORWARD -j REJECT --reject-with icmp-host-prohibited\n-A FORWARD -s 10.8.8.0/24 -j ACCEPT\n") {
		t.Errorf("FORWARD with a catch-all:\n%s", rules)
	}
	if res, err := Set(lk, spec); err != nil || len(res.Applied) != 0 {
		t.Errorf("catch-all, repeat: writes %v, err %v", res.Applied, err)
	}
}

// TestLinuxVXLANPortGuarded: a real tunnel between the agent's namespace
// (underlay 192.168.0.1) and a peer namespace whose vx-bridge is built by
// hand. From the peer's underlay address in the config's FDB the ping
// crosses; once the peer sends from another underlay address (not in the
// FDB), its packets to the VXLAN port are dropped in KOSMOS-INPUT and the
// ping fails. Before the fix any source reached the port, and the same
// ping crossed.
func TestLinuxVXLANPortGuarded(t *testing.T) {
	finding(t, "kernel: VXLAN ports accept known peers only")
	lk := freshKernel(t)
	peer := fmt.Sprintf("kpeer-%d", os.Getpid())
	_ = exec.Command("ip", "netns", "del", peer).Run()
	ip(t, "netns", "add", peer)
	defer func() { _ = exec.Command("ip", "netns", "del", peer).Run() }()
	ip(t, "link", "set", "eth0p", "netns", peer)
	peerVTEP := func(local string) {
		_ = exec.Command("ip", "-n", peer, "link", "del", "vx-bridge").Run()
		for _, args := range [][]string{
			{"link", "add", "vx-bridge", "address", "02:00:00:00:00:02", "type", "vxlan", "id", "54", "local", local, "dev", "eth0p", "dstport", "4876", "nolearning"},
			{"addr", "add", "220.168.0.2/8", "dev", "vx-bridge"}, {"link", "set", "vx-bridge", "up"},
		} {
			ip(t, append([]string{"-n", peer}, args...)...)
		}
		ip(t, "-n", peer, "neigh", "add", "220.168.0.1", "lladdr", "02:00:00:00:00:01", "dev", "vx-bridge", "nud", "permanent")
		out, err := exec.Command("bridge", "-n", peer, "fdb", "append", "02:00:00:00:00:01", "dev", "vx-bridge", "dst", "192.168.0.1", "self", "permanent").CombinedOutput()
		if err != nil {
			t.Fatalf("bridge fdb: %v %s", err, out)
		}
	}
	for _, args := range [][]string{{"addr", "add", "192.168.0.2/24", "dev", "eth0p"}, {"addr", "add", "192.168.0.3/24", "dev", "eth0p"}, {"link", "set", "eth0p", "up"}} {
		ip(t, append([]string{"-n", peer}, args...)...)
	}
	peerVTEP("192.168.0.2")
	spec := bigConfig(0)
	spec.FDB = []v1alpha1.FDBEntry{{MAC: "02:00:00:00:00:02", Dst: "192.168.0.2", Device: "vx-bridge"}}
	spec.Neighbors = []v1alpha1.Neighbor{{IP: "220.168.0.2", MAC: "02:00:00:00:00:02", Device: "vx-bridge"}}
	if _, err := Set(lk, spec); err != nil {
		t.Fatal(err)
	}
	ping := func() error {
		return exec.Command("ip", "netns", "exec", peer, "ping", "-c", "1", "-W", "1", "220.168.0.1").Run()
	}
	if err := ping(); err != nil {
		t.Fatalf("ping from the known peer: %v", err)
	}
	peerVTEP("192.168.0.3")
	if err := ping(); err == nil {
		t.Error("ping from an underlay address outside the FDB crossed")
	}
	if out, _ := exec.Command("iptables", "-nvxL", ChainInput).Output(); !regexp.MustCompile(`\n\s+[1-9]\d*\s+\d+\s+DROP\s+17`).Match(out) {
		t.Errorf("KOSMOS-INPUT dropped nothing:\n%s", out)
	}
}

// TestLinuxSysctlDrift: on a real kernel, forwarding turned off and strict
// reverse-path filtering set on vx-bridge after the agent applied its config
// are put back by the next Set (two writes), and then nothing changes.
// Before the fix both were set only when the device was created.
func TestLinuxSysctlDrift(t *testing.T) {
	finding(t, "kernel: sysctls compared, errors reported")
	lk := freshKernel(t)
	spec := bigConfig(1)
	if _, err := Set(lk, spec); err != nil {
		t.Fatal(err)
	}
	for path, v := range map[string]string{"net/ipv4/ip_forward": "0", "net/ipv4/conf/vx-bridge/rp_filter": "1"} {
		if err := os.WriteFile("/proc/sys/"+path, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Set(lk, spec)
	if err != nil || len(res.Applied) != 2 {
		t.Errorf("writes %v, err %v; want the two settings", res.Applied, err)
	}
	for path, want := range map[string]string{"net/ipv4/ip_forward": "1", "net/ipv4/conf/vx-bridge/rp_filter": "2"} {
		if got, _ := os.ReadFile("/proc/sys/" + path); strings.TrimSpace(string(got)) != want {
			t.Errorf("%s = %s, want %s", path, got, want)
		}
	}
	if res, err := Set(lk, spec); err != nil || len(res.Applied) != 0 {
		t.Errorf("repeat: writes %v, err %v", res.Applied, err)
	}
	// A device at 0 serves only while conf.all does not filter: the kernel
	// applies the larger of the two, so under all=1 the device is set to 2.
	for path, v := range map[string]string{"net/ipv4/conf/all/rp_filter": "1", "net/ipv4/conf/vx-bridge/rp_filter": "0"} {
		if err := os.WriteFile("/proc/sys/"+path, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := Set(lk, spec); err != nil || len(res.Applied) != 1 {
		t.Errorf("rp_filter 0 under all=1: writes %v, err %v; want the device's key", res.Applied, err)
	}
	if got, _ := os.ReadFile("/proc/sys/net/ipv4/conf/vx-bridge/rp_filter"); strings.TrimSpace(string(got)) != "2" {
		t.Errorf("rp_filter under all=1 = %s, want 2", got)
	}
	err = lk.Apply(Op{Kind: OpSet, Sysctl: &Sysctl{Key: "net.ipv4.conf.vx-nosuch.rp_filter", Value: "2"}})
	if err == nil || !strings.HasPrefix(err.Error(), "set sysctl net.ipv4.conf.vx-nosuch.rp_filter=2: ") {
		t.Errorf("write to a missing key: %v", err)
	}
}
