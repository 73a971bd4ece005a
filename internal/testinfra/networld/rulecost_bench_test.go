package networld

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"kosmos.io/kosmos/nodeagent"
)

// BenchmarkRuleCost: where the agent's iptables rules cost throughput on
// vx-bridge, hook by hook. BenchmarkDataPlane prices the rules as a whole
// (vxlan against vxlan-norules, about 0.85–0.89× unpinned); a piece costs a
// few percent, below one run's noise, so this benchmark measures each
// world many times in turn (ruleCostRounds, the order rotated each round)
// and compares medians. Each world is the agent's tunnel after the agents
// ran, then changed by hand (the agents do not run again):
//
//   - vxlan: as the agent left it;
//   - no-forward: FORWARD's jump to KOSMOS-FORWARD taken away;
//   - forward-nosets: KOSMOS-FORWARD-SRC accepts, so a forwarded packet
//     meets the device matches but not the two range set lookups;
//   - no-input: INPUT's jump to KOSMOS-INPUT (the VXLAN port guard) taken
//     away;
//   - no-raw: raw PREROUTING's and OUTPUT's jumps (the conntrack
//     exemption) taken away;
//   - norules: every chain emptied and removed (withoutRules).
//
// Each is reported as its median throughput over vxlan's (1.05: the
// piece costs 5%) and its median CPU per Gbit under vxlan's. On the
// project's 2-core VM the whole was worth 1.13–1.14× and no piece more
// than 1.03–1.09×, each near the medians' own spread: the cost is spread
// over every hook a packet meets, not in one rule (README, Benchmarks).
func BenchmarkRuleCost(b *testing.B) {
	const ruleCostRounds = 12
	nodes := []NodeSpec{
		node("east", "e1", "192.168.0.11/24", "10.10.1.0/24"),
		node("north", "n1", "192.168.0.41/24", "10.30.1.0/24"),
		node("west", "w1", "192.168.0.31/24", "10.244.1.0/24"),
	}
	if _, err := exec.LookPath("iperf3"); err != nil {
		b.Fatal("iperf3 missing: make bench installs it (hack/deps.sh)")
	}
	_, p := plan(b, benchTopology, nodes)
	worlds := []struct {
		name, prefix string
		change       func(*World)
	}{
		{"vxlan", "krc0-", nil},
		{"no-forward", "krc1-", func(w *World) { editRules(b, w, "filter", dropJump("FORWARD")) }},
		{"forward-nosets", "krc2-", func(w *World) { editRules(b, w, "filter", acceptAtSrc) }},
		{"no-input", "krc3-", func(w *World) { editRules(b, w, "filter", dropJump("INPUT")) }},
		{"no-raw", "krc4-", func(w *World) { editRules(b, w, "raw", dropJump("PREROUTING", "OUTPUT")) }},
		{"norules", "krc5-", func(w *World) { withoutRules(b, w) }},
	}
	built := map[string]*World{}
	for _, x := range worlds {
		w := benchWorld(b, x.prefix, nodes)
		applyPlan(b, w, p)
		if x.change != nil {
			x.change(w)
		}
		built[x.name] = w
	}
	to := PodIP(nodes[1].PodCIDRs[0])
	gbits, cpu := map[string][]float64{}, map[string][]float64{}
	for b.Loop() {
		for r := range ruleCostRounds {
			for i := range worlds {
				x := worlds[(i+r)%len(worlds)]
				w := built[x.name]
				m := iperfPinned(b, w.PodNS("north", "n1"), w.PodNS("east", "e1"), to, nil)
				gbits[x.name] = append(gbits[x.name], m.bps/1e9)
				cpu[x.name] = append(cpu[x.name], m.cpuPerGbit)
			}
			fmt.Printf("rule cost: round %d of %d\n", r+1, ruleCostRounds)
		}
	}
	base, baseCPU := median(gbits["vxlan"]), median(cpu["vxlan"])
	b.ReportMetric(base, "vxlan-Gbit/s")
	var line []string
	for _, x := range worlds[1:] {
		tput, perCPU := median(gbits[x.name])/base, baseCPU/median(cpu[x.name])
		b.ReportMetric(tput, x.name+"/vxlan")
		b.ReportMetric(perCPU, "per-cpu-"+x.name+"/vxlan")
		line = append(line, fmt.Sprintf("%s %.3f× (per CPU %.3f×)", x.name, tput, perCPU))
	}
	fmt.Printf("rule cost, medians of %d rounds against vx-bridge as the agent left it (%.2f Gbit/s): %s\n", ruleCostRounds, base, strings.Join(line, ", "))
}

// median is the middle of xs (the upper one of an even count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// editRules rewrites one table of every node of w: each line of its
// iptables-save that edit keeps (as edit returns it) is restored, the
// table replaced whole in one transaction. An edit that changes nothing
// on a node fails the benchmark: the world would measure as vxlan.
func editRules(b *testing.B, w *World, table string, edit func(line string) (string, bool)) {
	b.Helper()
	for _, n := range w.Nodes {
		ns := w.NodeNS(n.Cluster, n.Name)
		saved, err := InNS(ns, "iptables-save", "-t", table)
		if err != nil {
			b.Fatal(err)
		}
		var kept []string
		changed := 0
		for _, l := range strings.Split(saved, "\n") {
			e, ok := edit(l)
			if ok {
				kept = append(kept, e)
			}
			if !ok || e != l {
				changed++
			}
		}
		if changed == 0 {
			b.Fatalf("%s: the edit changed no rule of the %s table", ns, table)
		}
		restore := exec.Command("ip", "netns", "exec", ns, "iptables-restore", "-w")
		restore.Stdin = strings.NewReader(strings.Join(kept, "\n") + "\n")
		if out, err := restore.CombinedOutput(); err != nil {
			b.Fatalf("iptables-restore in %s: %v: %s", ns, err, out)
		}
	}
}

// dropJump is an editRules edit that takes away the built-in chains'
// jumps to the agent's chains.
func dropJump(builtins ...string) func(string) (string, bool) {
	return func(l string) (string, bool) {
		for _, c := range builtins {
			if strings.HasPrefix(l, "-A "+c+" ") && strings.Contains(l, " -j KOSMOS-") {
				return l, false
			}
		}
		return l, true
	}
}

// acceptAtSrc is an editRules edit that makes KOSMOS-FORWARD-SRC accept
// whatever reaches it, without its set lookup or KOSMOS-FORWARD-DST's.
func acceptAtSrc(l string) (string, bool) {
	switch {
	case strings.HasPrefix(l, "-A "+nodeagent.ChainForwardSrc+" "):
		return "-A " + nodeagent.ChainForwardSrc + " -j ACCEPT", true
	case strings.HasPrefix(l, "-A "+nodeagent.ChainForwardDst+" "):
		return l, false
	}
	return l, true
}
