package networld

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"kosmos.io/kosmos/nodeagent"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// iperf measures TCP throughput (bits/s) from one namespace to an address
// served by iperf3 in another.
func iperf(b *testing.B, serverNS, clientNS string, to netip.Addr) float64 {
	b.Helper()
	return iperfPinned(b, serverNS, clientNS, to, nil).bps
}

// measure is one iperf3 run: its throughput, and the CPU the whole machine
// spent per Gbit received meanwhile (busy time of every CPU in
// /proc/stat over the client's run, so it counts both ends and every
// softirq; other load on the machine counts too, so take the least of
// several).
type measure struct{ bps, cpuPerGbit float64 }

// busySeconds is the time every CPU together has spent busy since boot.
func busySeconds(b *testing.B) float64 {
	b.Helper()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	if len(f) < 9 || f[0] != "cpu" {
		b.Fatalf("/proc/stat: unexpected first line %q", line)
	}
	var busy float64
	for i, v := range f[1:9] {
		var n float64
		if _, err := fmt.Sscan(v, &n); err != nil {
			b.Fatalf("/proc/stat: %q: %v", line, err)
		}
		if i != 3 && i != 4 && i != 7 { // idle, iowait, steal (the hypervisor's)
			busy += n
		}
	}
	return busy / 100 // USER_HZ
}

// cpuPair names the CPU of each end of a measure: the client's and the
// server's.
type cpuPair struct{ client, server int }

// iperfPinned is iperf with the client and the server pinned to the CPUs
// of pin (none when nil).
func iperfPinned(b *testing.B, serverNS, clientNS string, to netip.Addr, pin *cpuPair) measure {
	b.Helper()
	var srvPin, cliPin []string
	if pin != nil {
		srvPin, cliPin = []string{"-A", fmt.Sprint(pin.server)}, []string{"-A", fmt.Sprint(pin.client)}
	}
	srv := exec.Command("ip", append([]string{"netns", "exec", serverNS, "iperf3", "-s", "-1", "-p", "5301"}, srvPin...)...)
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	var out []byte
	var err error
	var res struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
				Bytes         float64 `json:"bytes"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	deadline := time.Now().Add(5 * time.Second)
	var busy float64
	for { // the server needs a moment to listen: iperf3 -J reports a refused connection in its JSON
		busy0 := busySeconds(b)
		out, err = exec.Command("ip", append([]string{"netns", "exec", clientNS, "iperf3", "-c", to.String(), "-p", "5301", "-t", "3", "-J"}, cliPin...)...).Output()
		busy = busySeconds(b) - busy0
		res.Error = ""
		if err == nil {
			err = json.Unmarshal(out, &res)
		}
		if (err == nil && res.Error == "") || time.Now().After(deadline) {
			break
		}
		<-time.After(100 * time.Millisecond)
	}
	if err != nil || res.Error != "" {
		b.Fatalf("iperf3 %s → %s: %v %s\n%s", clientNS, to, err, res.Error, out)
	}
	if res.End.SumReceived.BitsPerSecond <= 0 || res.End.SumReceived.Bytes <= 0 { // a failed measure is no figure, and no baseline
		b.Fatalf("iperf3 %s → %s measured nothing:\n%s", clientNS, to, out)
	}
	return measure{bps: res.End.SumReceived.BitsPerSecond, cpuPerGbit: busy / (res.End.SumReceived.Bytes * 8 / 1e9)}
}

// steerRx sends what device dev of namespace ns receives to the given CPU
// (receive packet steering; -1: back to the CPU that received it). A
// machine's NIC hands its packets to that machine's CPUs: steering each
// wire's receive to its own side's CPU makes the two ends of a measure
// two machines, where on one CPU both ends' kernel work would run in turn
// in the sender's softirq.
func steerRx(b *testing.B, ns, dev string, cpu int) {
	b.Helper()
	mask := "0"
	if cpu >= 0 {
		// Comma-separated 32-bit words, the most significant first.
		words := make([]string, cpu/32+1)
		for i := range words {
			words[i] = "0"
		}
		words[0] = fmt.Sprintf("%x", uint32(1)<<(cpu%32))
		mask = strings.Join(words, ",")
	}
	if _, err := Run("ip", "netns", "exec", ns, "sh", "-c", fmt.Sprintf("for q in /sys/class/net/%s/queues/rx-*; do echo %s > $q/rps_cpus || exit 1; done", dev, mask)); err != nil {
		b.Fatal(err)
	}
}

// routeAcross gives every node of w plain routes to the pod ranges of the
// nodes of other clusters, over the underlay: the same namespaces and hops
// as the pod path (pod, node, underlay, node, pod), without a tunnel.
func routeAcross(b *testing.B, w *World) {
	b.Helper()
	for _, n := range w.Nodes {
		for _, o := range w.Nodes {
			if o.Cluster == n.Cluster {
				continue
			}
			for _, c := range o.PodCIDRs {
				if _, err := Run("ip", "-n", w.NodeNS(n.Cluster, n.Name), "route", "replace", c.String(), "via", o.Underlay[0].Addr().String()); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

// benchNodes are the nodes of the data-plane benchmarks' worlds: east and
// north are the path measured (plain), west the GlobalCIDR one.
func benchNodes() []NodeSpec {
	return []NodeSpec{
		node("east", "e1", "192.168.0.11/24", "10.10.1.0/24"),
		node("north", "n1", "192.168.0.41/24", "10.30.1.0/24"),
		node("west", "w1", "192.168.0.31/24", "10.244.1.0/24"),
	}
}

// needIperf3 fails a benchmark that measures with iperf3 where it is
// missing.
func needIperf3(b *testing.B) {
	b.Helper()
	if _, err := exec.LookPath("iperf3"); err != nil {
		b.Fatal("iperf3 missing: make bench installs it (hack/deps.sh)")
	}
}

// benchWorld builds a world of nodes, its namespaces named with prefix,
// destroyed when the benchmark ends.
func benchWorld(b *testing.B, prefix string, nodes []NodeSpec) *World {
	b.Helper()
	w, err := Build(prefix, nodes)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Destroy)
	return w
}

// bareTunnel joins the nodes of w by a VXLAN device of their own, made by
// hand as a tutorial would (ip link add … type vxlan: the kernel's
// defaults, the agent's port and MTU), and routes the pod ranges of the
// nodes of other clusters over it: the tunnel with nothing of the agent's
// around it (no filter, raw or nat rule, no set, no sysctl). Against the
// routed path it shows what VXLAN itself costs; against vx-bridge, what
// the agent adds (its guards and exemptions, which every packet meets).
func bareTunnel(b *testing.B, w *World) {
	b.Helper()
	const dev, mtu = "vx-bare", "1450"
	mac := func(i int) string { return fmt.Sprintf("02:00:00:00:00:%02x", i+1) }
	tunnelIP := func(i int) string { return fmt.Sprintf("10.254.0.%d", i+1) }
	var steps [][]string
	for i, n := range w.Nodes {
		ns := w.NodeNS(n.Cluster, n.Name)
		steps = append(steps,
			[]string{"ip", "-n", ns, "link", "add", dev, "address", mac(i), "type", "vxlan", "id", "7", "local", n.Underlay[0].Addr().String(), "dev", "eth0", "dstport", fmt.Sprint(v1alpha1.DefaultBridgePort), "nolearning"},
			[]string{"ip", "-n", ns, "link", "set", dev, "mtu", mtu, "up"},
			[]string{"ip", "-n", ns, "addr", "add", tunnelIP(i) + "/32", "dev", dev})
		for j, o := range w.Nodes {
			if o.Cluster == n.Cluster {
				continue
			}
			steps = append(steps,
				[]string{"ip", "netns", "exec", ns, "bridge", "fdb", "append", mac(j), "dev", dev, "dst", o.Underlay[0].Addr().String()},
				[]string{"ip", "-n", ns, "neigh", "replace", tunnelIP(j), "lladdr", mac(j), "dev", dev, "nud", "permanent"})
			for _, c := range o.PodCIDRs {
				steps = append(steps, []string{"ip", "-n", ns, "route", "replace", c.String(), "via", tunnelIP(j), "dev", dev, "onlink"})
			}
		}
	}
	for _, s := range steps {
		if _, err := Run(s[0], s[1:]...); err != nil {
			b.Fatal(err)
		}
	}
}

const benchTopology = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: bench}
spec:
  clusters:
    - name: east
      role: host
      kubeconfig: {context: east}
      network: {podCIDRs: [10.10.0.0/16]}
    - name: north
      role: member
      kubeconfig: {context: north}
      network: {podCIDRs: [10.30.0.0/16]}
    - name: west
      role: member
      kubeconfig: {context: west}
      network:
        podCIDRs: [10.244.0.0/16]
        globalCIDRs: {10.244.0.0/16: 100.64.0.0/16}
`

// BenchmarkDataPlane: iperf3 TCP throughput pod → pod across clusters
// through vx-bridge (plain) and through the GlobalCIDR NAT path, each as a
// ratio to two baselines measured in the same run: a direct veth between
// two namespaces (one hop; target ≥ 0.75), and the routed path (the same
// namespaces and hops as the pod path, plain routing over the underlay, no
// tunnel), so the tunnel's cost shows on its own (target ≥ 0.85); and
// that routed path with conntrack on its nodes, as kube-proxy has it on
// every Kubernetes node (routed-ct). A baseline that measures nothing
// fails the benchmark. Every path is measured unpinned and as two
// machines (apart-), and the machine's CPU per Gbit of each unpinned run
// is reported (per-cpu-). Both tunnel paths are measured again with the
// offloads the agent keeps on its devices turned off (vxlan/no-offloads:
// what keeping them is worth). The tunnel is measured at fleet scale too
// (fleet-: each node's config carrying 1,800 more remote nodes), with the
// agent's set lookups and rule by rule as before them (fleet-rules-).
// So is the tunnel on nodes where conntrack runs (vxlan-ct, to compare with
// routed-ct), and a bare tunnel made by hand with nothing of the agent's
// around it (vxlan-bare, bareTunnel): the routed path to it is what VXLAN
// costs, and its ratio to direct veth how far the kernel's own tunnel
// gets towards that target; and vx-bridge with every iptables rule of its
// nodes taken away after the agents ran (vxlan-norules, withoutRules): it
// to vx-bridge is what the agent's rules cost (BenchmarkRuleCost prices
// them hook by hook). Every figure is the best of three turns,
// the paths measured in turn.
func BenchmarkDataPlane(b *testing.B) {
	const benchRounds = 3
	nodes := benchNodes()
	needIperf3(b)
	w := benchWorld(b, "kbd-", nodes)
	// The direct path: two namespaces joined by one veth pair.
	a, z := "kbd-direct-a", "kbd-direct-z"
	for _, args := range [][]string{
		{"netns", "add", a}, {"netns", "add", z},
		{"link", "add", "eth0", "netns", a, "type", "veth", "peer", "name", "eth0", "netns", z},
		{"-n", a, "addr", "add", "10.200.0.1/30", "dev", "eth0"}, {"-n", z, "addr", "add", "10.200.0.2/30", "dev", "eth0"},
		{"-n", a, "link", "set", "eth0", "up"}, {"-n", z, "link", "set", "eth0", "up"},
		{"-n", a, "link", "set", "lo", "up"}, {"-n", z, "link", "set", "lo", "up"},
	} {
		if _, err := Run("ip", args...); err != nil {
			b.Fatal(err)
		}
	}
	defer func() { _, _ = Run("ip", "netns", "del", a); _, _ = Run("ip", "netns", "del", z) }()

	// The routed path: a world of the same nodes, routed without Kosmos.
	rw := benchWorld(b, "kbr-", nodes[:2])
	routeAcross(b, rw)

	// The routed path again, with conntrack on both nodes as every
	// Kubernetes node has it (kube-proxy's rules need it): what a tunnel
	// costs beyond what such a node already pays.
	cw := benchWorld(b, "kbc-", nodes[:2])
	routeAcross(b, cw)
	withConntrack(b, cw)

	// The bare tunnel: the routed world's nodes joined by a VXLAN device
	// made by hand, with nothing of the agent's around it.
	vw := benchWorld(b, "kbv-", nodes[:2])
	bareTunnel(b, vw)

	topo, p := plan(b, benchTopology, nodes)
	applyPlan(b, w, p)

	// The tunnel on nodes with conntrack too (vxlan-ct), to compare with
	// routed-ct: the tunnel world's nodes have no netfilter rule that
	// needs conntrack, so against routed-ct the plain tunnel would be
	// spared a cost the routed path pays.
	kw := benchWorld(b, "kbk-", nodes)
	withConntrack(b, kw)
	applyPlan(b, kw, p)

	// The agent's tunnel with the agent's rules taken away (vxlan-norules):
	// against vx-bridge, what its rules cost; against the bare tunnel,
	// what else it sets.
	nw := benchWorld(b, "kbn-", nodes)
	applyPlan(b, nw, p)
	withoutRules(b, nw)

	// The tunnel at fleet scale: the same world, each config carrying
	// fleetPeers more remote nodes (padFleet), as a P2P fleet brings them;
	// and again with the agent's set lookups replaced by the rule-by-rule
	// chains the agent wrote before them (ruleByRule): what the sets are
	// worth.
	fw := benchWorld(b, "kbf-", nodes)
	applyPlanWith(b, fw, p, padFleet(fleetPeers))
	lw := benchWorld(b, "kbl-", nodes)
	applyPlanWith(b, lw, p, padFleet(fleetPeers))
	ruleByRule(b, lw)

	// Each path is measured benchRounds times, the paths taking turns; its
	// best throughput and its least CPU per Gbit count: on a shared
	// machine a single figure mostly measures what else ran meanwhile, and
	// the best of interleaved turns is what the path can do when it gets
	// the CPU.
	type path struct {
		name                   string
		server, client         string // the ends' namespaces
		serverWire, clientWire string // the namespaces whose eth0 is each end's wire
		to                     netip.Addr
	}
	paths := []path{
		{"direct", z, a, z, a, netip.MustParseAddr("10.200.0.2")},
		{"routed", rw.PodNS("north", "n1"), rw.PodNS("east", "e1"), rw.NodeNS("north", "n1"), rw.NodeNS("east", "e1"), PodIP(nodes[1].PodCIDRs[0])},
		{"routed-ct", cw.PodNS("north", "n1"), cw.PodNS("east", "e1"), cw.NodeNS("north", "n1"), cw.NodeNS("east", "e1"), PodIP(nodes[1].PodCIDRs[0])},
		{"vxlan-bare", vw.PodNS("north", "n1"), vw.PodNS("east", "e1"), vw.NodeNS("north", "n1"), vw.NodeNS("east", "e1"), PodIP(nodes[1].PodCIDRs[0])},
		{"vxlan", w.PodNS("north", "n1"), w.PodNS("east", "e1"), w.NodeNS("north", "n1"), w.NodeNS("east", "e1"), PodIP(nodes[1].PodCIDRs[0])},
		{"nat", w.PodNS("west", "w1"), w.PodNS("east", "e1"), w.NodeNS("west", "w1"), w.NodeNS("east", "e1"), globalAddr(topo, nodes[2])},
		{"vxlan-norules", nw.PodNS("north", "n1"), nw.PodNS("east", "e1"), nw.NodeNS("north", "n1"), nw.NodeNS("east", "e1"), PodIP(nodes[1].PodCIDRs[0])},
		{"vxlan-ct", kw.PodNS("north", "n1"), kw.PodNS("east", "e1"), kw.NodeNS("north", "n1"), kw.NodeNS("east", "e1"), PodIP(nodes[1].PodCIDRs[0])},
		{"fleet", fw.PodNS("north", "n1"), fw.PodNS("east", "e1"), fw.NodeNS("north", "n1"), fw.NodeNS("east", "e1"), PodIP(nodes[1].PodCIDRs[0])},
		{"fleet-rules", lw.PodNS("north", "n1"), lw.PodNS("east", "e1"), lw.NodeNS("north", "n1"), lw.NodeNS("east", "e1"), PodIP(nodes[1].PodCIDRs[0])},
	}
	// Two machines: each end and its side's wire get a CPU of their own
	// (client and sender's receive on one, server and receiver's receive
	// on another), as the two nodes of a real path have. Unpinned, both
	// nodes' kernel work runs in turn in the sender's softirq, so a path's
	// figure there is the sum of both sides' costs where two machines pay
	// the larger. (The underlay bridge's work, which a real switch does,
	// falls on the sender's CPU: alike for the routed and tunnel paths. The
	// two CPUs are the first two the process may use, which may be two
	// threads of one core.)
	var cpus []int
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err == nil {
		for c := 0; c < 1024 && len(cpus) < 2; c++ {
			if allowed.IsSet(c) {
				cpus = append(cpus, c)
			}
		}
	}
	twoMachines := len(cpus) == 2
	apart := func(p path) measure {
		steerRx(b, p.serverWire, "eth0", cpus[1])
		steerRx(b, p.clientWire, "eth0", cpus[0])
		defer steerRx(b, p.serverWire, "eth0", -1)
		defer steerRx(b, p.clientWire, "eth0", -1)
		return iperfPinned(b, p.server, p.client, p.to, &cpuPair{client: cpus[0], server: cpus[1]})
	}
	one, two := map[string]measure{}, map[string]measure{}
	keep := func(into map[string]measure, name string, x measure) {
		if cur, ok := into[name]; ok {
			x = measure{bps: max(cur.bps, x.bps), cpuPerGbit: min(cur.cpuPerGbit, x.cpuPerGbit)}
		}
		into[name] = x
	}
	named := func(name string) path {
		return paths[slices.IndexFunc(paths, func(p path) bool { return p.name == name })]
	}
	vx, nt := named("vxlan"), named("nat") // measured again without the offloads
	var plainOff, natOff float64
	best := func(v *float64, x float64) { *v = max(*v, x) }
	for b.Loop() {
		for range benchRounds {
			for _, p := range paths {
				keep(one, p.name, iperfPinned(b, p.server, p.client, p.to, nil))
				if twoMachines {
					keep(two, p.name, apart(p))
				}
			}
			// The tunnel paths with the offloads the agent keeps turned off
			// (the agents ran once: nothing sets them again), then back on.
			setTunnelOffloads(b, w, false)
			best(&plainOff, iperf(b, vx.server, vx.client, vx.to))
			best(&natOff, iperf(b, nt.server, nt.client, nt.to))
			setTunnelOffloads(b, w, true)
		}
	}
	view(b, "", "unpinned", one)
	plain, nat := one["vxlan"].bps, one["nat"].bps
	// Throughput per CPU: the baseline's CPU per Gbit over the path's (1:
	// the path costs the machine what the baseline does).
	perCPU := func(path, base string) float64 { return one[base].cpuPerGbit / one[path].cpuPerGbit }
	b.ReportMetric(one["vxlan"].cpuPerGbit, "vxlan-cpu-s/Gbit")
	b.ReportMetric(perCPU("vxlan", "routed"), "per-cpu-vxlan/routed")
	b.ReportMetric(perCPU("vxlan-bare", "routed"), "per-cpu-vxlan-bare/routed")
	b.ReportMetric(perCPU("vxlan", "vxlan-bare"), "per-cpu-vxlan/vxlan-bare")
	b.ReportMetric(perCPU("vxlan", "vxlan-norules"), "per-cpu-vxlan/vxlan-norules")
	b.ReportMetric(perCPU("nat", "routed"), "per-cpu-nat/routed")
	b.ReportMetric(perCPU("vxlan", "routed-ct"), "per-cpu-vxlan/routed-ct")
	b.ReportMetric(perCPU("nat", "routed-ct"), "per-cpu-nat/routed-ct")
	b.ReportMetric(plainOff/1e9, "vxlan-no-offloads-Gbit/s")
	b.ReportMetric(plain/plainOff, "vxlan/no-offloads")
	b.ReportMetric(nat/natOff, "nat/no-offloads")
	fmt.Printf("data plane, CPU per Gbit: direct %.3f s, routed %.3f, routed with conntrack %.3f; vx-bridge %.3f (%.2f× direct's throughput per CPU, %.2f× routed's, %.2f× routed with conntrack's), GlobalCIDR NAT %.3f (%.2f×, %.2f×, %.2f×)\n",
		one["direct"].cpuPerGbit, one["routed"].cpuPerGbit, one["routed-ct"].cpuPerGbit, one["vxlan"].cpuPerGbit, perCPU("vxlan", "direct"), perCPU("vxlan", "routed"), perCPU("vxlan", "routed-ct"),
		one["nat"].cpuPerGbit, perCPU("nat", "direct"), perCPU("nat", "routed"), perCPU("nat", "routed-ct"))
	fmt.Printf("data plane, CPU per Gbit: bare VXLAN %.3f s (%.2f× routed's throughput per CPU); vx-bridge %.2f× the bare tunnel's, %.2f× its own without the agent's rules\n",
		one["vxlan-bare"].cpuPerGbit, perCPU("vxlan-bare", "routed"), perCPU("vxlan", "vxlan-bare"), perCPU("vxlan", "vxlan-norules"))
	if twoMachines {
		view(b, "apart-", "two machines", two)
	} else {
		fmt.Println("data plane, two machines: not measured (one CPU)")
	}
	fmt.Printf("data plane without the tunnel offloads: vx-bridge %.2f Gbit/s (offloads on: %.2f× that), GlobalCIDR NAT %.2f (%.2f×)\n",
		plainOff/1e9, plain/plainOff, natOff/1e9, nat/natOff)

}

// view reports one view's throughput of each path and the tunnel paths'
// ratios to the baselines, as metrics named with prefix, and prints them.
func view(b *testing.B, prefix, name string, m map[string]measure) {
	defer fleetView(b, prefix, name, m)
	defer bareView(b, prefix, name, m)
	direct, routed, ct, plain, nat := m["direct"].bps, m["routed"].bps, m["routed-ct"].bps, m["vxlan"].bps, m["nat"].bps
	for _, f := range []struct {
		v    float64
		unit string
	}{
		{direct / 1e9, "direct-Gbit/s"}, {routed / 1e9, "routed-Gbit/s"}, {ct / 1e9, "routed-ct-Gbit/s"}, {plain / 1e9, "vxlan-Gbit/s"}, {nat / 1e9, "nat-Gbit/s"},
		{plain / direct, "vxlan/direct"}, {plain / routed, "vxlan/routed"}, {plain / ct, "vxlan/routed-ct"},
		{nat / direct, "nat/direct"}, {nat / routed, "nat/routed"}, {nat / ct, "nat/routed-ct"},
	} {
		b.ReportMetric(f.v, prefix+f.unit)
	}
	fmt.Printf("data plane, %s: direct %.2f Gbit/s, routed %.2f, routed with conntrack %.2f; vx-bridge %.2f (%.2f× direct, %.2f× routed, %.2f× routed with conntrack), GlobalCIDR NAT %.2f (%.2f×, %.2f×, %.2f×)\n",
		name, direct/1e9, routed/1e9, ct/1e9, plain/1e9, plain/direct, plain/routed, plain/ct, nat/1e9, nat/direct, nat/routed, nat/ct)
}

// setTunnelOffloads turns the offloads the agent keeps (checksums, SG, TSO,
// GSO, GRO) on or off on every vx- device of every node of w: the
// benchmark's knob to show what they are worth.
func setTunnelOffloads(b *testing.B, w *World, on bool) {
	b.Helper()
	features := []string{nodeagent.FeatureRxChecksum, nodeagent.FeatureTxChecksum, nodeagent.FeatureSG, nodeagent.FeatureTSO, nodeagent.FeatureGSO, nodeagent.FeatureGRO}
	if !on {
		slices.Reverse(features) // what depends on another goes first
	}
	for _, n := range w.Nodes {
		err := func() error {
			leave, err := nodeagent.EnterNetNS(w.NodeNS(n.Cluster, n.Name))
			if err != nil {
				return err
			}
			defer leave()
			links, err := netlink.LinkList()
			if err != nil {
				return err
			}
			for _, l := range links {
				if _, ok := l.(*netlink.Vxlan); !ok || !strings.HasPrefix(l.Attrs().Name, "vx-") {
					continue
				}
				for _, f := range features {
					if err := nodeagent.SetOffload(l.Attrs().Name, f, on); err != nil {
						return err
					}
				}
			}
			return nil
		}()
		if err != nil {
			b.Fatalf("offloads on %s/%s: %v", n.Cluster, n.Name, err)
		}
	}
}

// fleetPeers is how many made-up remote nodes the fleet worlds' configs
// carry: the other nodes of a P2P fleet of 10 clusters of 200.
const fleetPeers = 1800

// padFleet adds n made-up remote nodes to a config, each as P2P brings a
// remote node: an FDB entry (its underlay address), a neighbour (its
// tunnel address) and a route (its pod range) on vx-bridge. They lead
// nowhere; they fill the agent's peers and known ranges as a fleet does.
func padFleet(n int) func(*v1alpha1.NodeConfig) {
	return func(nc *v1alpha1.NodeConfig) {
		for i := range n {
			j := i + 2
			mac := fmt.Sprintf("02:00:00:%02x:%02x:%02x", j>>16&0xff, j>>8&0xff, j&0xff)
			via := fmt.Sprintf("220.99.%d.%d", j>>8, j&0xff)
			nc.Spec.FDB = append(nc.Spec.FDB, v1alpha1.FDBEntry{MAC: mac, Dst: fmt.Sprintf("10.99.%d.%d", j>>8, j&0xff), Device: v1alpha1.DeviceBridge})
			nc.Spec.Neighbors = append(nc.Spec.Neighbors, v1alpha1.Neighbor{IP: via, MAC: mac, Device: v1alpha1.DeviceBridge})
			nc.Spec.Routes = append(nc.Spec.Routes, v1alpha1.Route{Dst: fmt.Sprintf("172.%d.%d.0/24", 16+i/256, i%256), Via: via, Device: v1alpha1.DeviceBridge})
		}
	}
}

// ruleByRule rewrites the agent's filter chains on every node of w as the
// agent wrote them before its rules matched sets (ipset.go): a RETURN per
// peer in KOSMOS-INPUT, in the sets' (sorted) order, then the port's DROP;
// a rule per known range in KOSMOS-FORWARD-SRC and -DST. The agents ran
// once: nothing puts the set rules back.
func ruleByRule(b *testing.B, w *World) {
	b.Helper()
	for _, n := range w.Nodes {
		ns := w.NodeNS(n.Cluster, n.Name)
		var rules []string
		for _, set := range kernelState(b, ns).Sets {
			switch port, ok := strings.CutPrefix(set.Name, "KOSMOS-PEER4-"); {
			case ok:
				for _, m := range set.Members {
					rules = append(rules, fmt.Sprintf("-A KOSMOS-INPUT -s %s/32 -p udp -m udp --dport %s -j RETURN", m, port))
				}
				rules = append(rules, fmt.Sprintf("-A KOSMOS-INPUT -p udp -m udp --dport %s -j DROP", port))
			case set.Name == "KOSMOS-RANGE4":
				for _, m := range set.Members {
					rules = append(rules, "-A KOSMOS-FORWARD-SRC -s "+m+" -g KOSMOS-FORWARD-DST", "-A KOSMOS-FORWARD-DST -d "+m+" -j ACCEPT")
				}
			}
		}
		if len(rules) < 2*fleetPeers {
			b.Fatalf("%s: only %d rules from the agent's sets", ns, len(rules))
		}
		restore := "*filter\n:KOSMOS-INPUT - [0:0]\n:KOSMOS-FORWARD-SRC - [0:0]\n:KOSMOS-FORWARD-DST - [0:0]\n" + strings.Join(rules, "\n") + "\nCOMMIT\n"
		cmd := exec.Command("ip", "netns", "exec", ns, "iptables-restore", "--noflush")
		cmd.Stdin = strings.NewReader(restore)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s: iptables-restore: %v\n%s", ns, err, out)
		}
	}
}

// withoutRules empties and removes every iptables chain of every node of
// w, the agent's included (their jumps with them): the agents ran once,
// nothing writes them again.
func withoutRules(b *testing.B, w *World) {
	b.Helper()
	for _, n := range w.Nodes {
		for _, bin := range []string{"iptables", "ip6tables"} {
			for _, table := range []string{"raw", "mangle", "nat", "filter"} {
				for _, op := range []string{"-F", "-X"} {
					if _, err := Run("ip", "netns", "exec", w.NodeNS(n.Cluster, n.Name), bin, "-w", "-t", table, op); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	}
}

// withConntrack makes conntrack run on every node of w, as kube-proxy's
// rules do on every Kubernetes node.
func withConntrack(b *testing.B, w *World) {
	b.Helper()
	for _, n := range w.Nodes {
		for _, r := range [][]string{
			{"-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
			{"-t", "nat", "-A", "POSTROUTING", "-j", "RETURN"},
		} {
			if _, err := Run("ip", append([]string{"netns", "exec", w.NodeNS(n.Cluster, n.Name), "iptables"}, r...)...); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// bareView reports the bare tunnel of one view against the routed path
// (what VXLAN itself costs) and against direct veth (how far the kernel's
// own tunnel gets towards that target), and vx-bridge against the bare
// tunnel (what the agent's rules and settings cost).
func bareView(b *testing.B, prefix, name string, m map[string]measure) {
	direct, routed, bare, plain, norules := m["direct"].bps, m["routed"].bps, m["vxlan-bare"].bps, m["vxlan"].bps, m["vxlan-norules"].bps
	b.ReportMetric(bare/1e9, prefix+"vxlan-bare-Gbit/s")
	b.ReportMetric(bare/routed, prefix+"vxlan-bare/routed")
	b.ReportMetric(bare/direct, prefix+"vxlan-bare/direct")
	b.ReportMetric(plain/bare, prefix+"vxlan/vxlan-bare")
	b.ReportMetric(norules/1e9, prefix+"vxlan-norules-Gbit/s")
	b.ReportMetric(plain/norules, prefix+"vxlan/vxlan-norules")
	b.ReportMetric(norules/bare, prefix+"vxlan-norules/vxlan-bare")
	fmt.Printf("data plane, bare VXLAN, %s: %.2f Gbit/s (%.2f× routed, %.2f× direct); vx-bridge %.2f× the bare tunnel, and %.2f× itself without the agent's rules (%.2f Gbit/s, %.2f× the bare tunnel)\n",
		name, bare/1e9, bare/routed, bare/direct, plain/bare, plain/norules, norules/1e9, norules/bare)
}

// fleetView reports the tunnel on nodes with conntrack against routed-ct,
// and the fleet paths of one view: each as a ratio to the routed baseline
// and to the three-node tunnel, and the sets' worth (the fleet with sets
// over the fleet rule by rule).
func fleetView(b *testing.B, prefix, name string, m map[string]measure) {
	routed, plain, fleet, rules := m["routed"].bps, m["vxlan"].bps, m["fleet"].bps, m["fleet-rules"].bps
	ct, vxct := m["routed-ct"].bps, m["vxlan-ct"].bps
	for _, f := range []struct {
		v    float64
		unit string
	}{
		{vxct / 1e9, "vxlan-ct-Gbit/s"}, {vxct / ct, "vxlan-ct/routed-ct"},
		{fleet / 1e9, "fleet-Gbit/s"}, {rules / 1e9, "fleet-rules-Gbit/s"},
		{fleet / routed, "fleet/routed"}, {fleet / plain, "fleet/vxlan"}, {rules / routed, "fleet-rules/routed"}, {fleet / rules, "fleet/fleet-rules"},
	} {
		b.ReportMetric(f.v, prefix+f.unit)
	}
	fmt.Printf("data plane on nodes with conntrack, %s: vx-bridge %.2f Gbit/s (%.2f× routed with conntrack)\n", name, vxct/1e9, vxct/ct)
	fmt.Printf("data plane at fleet scale (%d peers), %s: vx-bridge %.2f Gbit/s (%.2f× routed, %.2f× with 2 peers); rule by rule %.2f (%.2f× routed): the sets are worth %.2f×\n",
		fleetPeers, name, fleet/1e9, fleet/routed, fleet/plain, rules/1e9, rules/routed, fleet/rules)
}
