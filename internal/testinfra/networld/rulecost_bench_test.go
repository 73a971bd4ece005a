package networld

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"kosmos.io/kosmos/internal/testinfra/benchstat"
	"kosmos.io/kosmos/nodeagent"
)

// BenchmarkRuleCost: where the agent's iptables rules cost throughput on
// vx-bridge, hook by hook. BenchmarkDataPlane prices the rules as a whole
// (vxlan against vxlan-norules); a piece costs a few percent, below one
// run's noise, so this benchmark measures each world many times in turn
// (ruleCostRounds, even; the order rotated every two rounds and the second
// of each two reversed, so every world takes each place equally often and
// none always follows the same one) and compares medians.
// Each world is the agent's tunnel after the agents ran (they do not run
// again), its tables then saved and restored by hand, changed or not:
//
//   - vxlan: as the agent left it;
//   - vxlan-again: the same, a second world: its ratio to vxlan is what
//     two equal worlds differ by, the noise floor of the others;
//   - no-forward: FORWARD's jump to KOSMOS-FORWARD taken away;
//   - forward-nosets: KOSMOS-FORWARD-SRC accepts, so a forwarded packet
//     meets the device matches but not the two range set lookups;
//   - no-input: INPUT's jump to KOSMOS-INPUT (the VXLAN port guard) taken
//     away;
//   - no-raw: raw PREROUTING's and OUTPUT's jumps (the conntrack
//     exemption) taken away;
//   - norules: every chain emptied and removed (withoutRules), so the
//     nat chains go too (and the IPv6 tables, which this IPv4 path does
//     not meet).
//
// Each is reported as its median throughput over vxlan's (1.05: 5% more
// without the piece) and vxlan's median CPU per Gbit over its own. The
// conntrack entries on the measured path's two nodes after the last round
// are reported too: none means conntrack does not run there (their rules
// need none; west's NETMAP would), so the nat chains pass packets at once.
func BenchmarkRuleCost(b *testing.B) {
	const ruleCostRounds = 12
	nodes := benchNodes()
	needIperf3(b)
	_, p := plan(b, benchTopology, nodes)
	unchanged := func(w *World) {
		editRules(b, w, "filter", func(l string) (string, bool) { return l, true }, 0)
		editRules(b, w, "raw", func(l string) (string, bool) { return l, true }, 0)
	}
	worlds := []struct {
		name, prefix string
		change       func(*World)
	}{
		{"vxlan", "krc0-", unchanged},
		{"vxlan-again", "krc1-", unchanged},
		{"no-forward", "krc2-", func(w *World) { editRules(b, w, "filter", dropJump("FORWARD"), 1) }},
		// One line changed (SRC accepts), one dropped (DST's lookup).
		{"forward-nosets", "krc3-", func(w *World) { editRules(b, w, "filter", acceptAtSrc, 2) }},
		{"no-input", "krc4-", func(w *World) { editRules(b, w, "filter", dropJump("INPUT"), 1) }},
		{"no-raw", "krc5-", func(w *World) { editRules(b, w, "raw", dropJump("PREROUTING", "OUTPUT"), 2) }},
		{"norules", "krc6-", func(w *World) { withoutRules(b, w) }},
	}
	built := map[string]*World{}
	for _, x := range worlds {
		w := benchWorld(b, x.prefix, nodes)
		applyPlan(b, w, p)
		x.change(w)
		built[x.name] = w
	}
	to := PodIP(nodes[1].PodCIDRs[0])
	gbits, cpu := map[string][]float64{}, map[string][]float64{}
	for b.Loop() {
		for r := range ruleCostRounds {
			order := make([]string, len(worlds))
			for i := range worlds {
				order[i] = worlds[(i+r/2)%len(worlds)].name
			}
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, name := range order {
				w := built[name]
				m := iperfPinned(b, w.PodNS("north", "n1"), w.PodNS("east", "e1"), to, nil)
				gbits[name] = append(gbits[name], m.bps/1e9)
				cpu[name] = append(cpu[name], m.cpuPerGbit)
			}
			fmt.Printf("rule cost: round %d of %d\n", r+1, ruleCostRounds)
		}
	}
	base, baseCPU := benchstat.Median(gbits["vxlan"]), benchstat.Median(cpu["vxlan"])
	b.ReportMetric(base, "vxlan-Gbit/s")
	var line []string
	for _, x := range worlds[1:] {
		tput, perCPU := benchstat.Median(gbits[x.name])/base, baseCPU/benchstat.Median(cpu[x.name])
		b.ReportMetric(tput, x.name+"/vxlan")
		b.ReportMetric(perCPU, "per-cpu-"+x.name+"/vxlan")
		line = append(line, fmt.Sprintf("%s %.3f× (per CPU %.3f×)", x.name, tput, perCPU))
	}
	entries := conntrackEntries(b, built["vxlan"].NodeNS("north", "n1")) + conntrackEntries(b, built["vxlan"].NodeNS("east", "e1"))
	b.ReportMetric(float64(entries), "conntrack-entries")
	fmt.Printf("rule cost, medians of %d runs each against vx-bridge as the agent left it (%.2f Gbit/s): %s; conntrack entries on the path's nodes: %d\n",
		len(gbits["vxlan"]), base, strings.Join(line, ", "), entries)
}

// conntrackEntries is how many connections conntrack holds in a
// namespace (0 where the module is not loaded: nothing tracked).
func conntrackEntries(b *testing.B, ns string) int {
	b.Helper()
	const count = "/proc/sys/net/netfilter/nf_conntrack_count"
	if _, err := os.Stat(count); os.IsNotExist(err) {
		return 0
	}
	out, err := InNS(ns, "cat", count)
	if err != nil {
		b.Fatal(err)
	}
	var n int
	if _, err := fmt.Sscan(out, &n); err != nil {
		b.Fatalf("nf_conntrack_count in %s: %q: %v", ns, out, err)
	}
	return n
}

// editRules rewrites one table of every node of w: each line of its
// iptables-save that edit keeps (as edit returns it) is restored, the
// table replaced whole in one transaction. Each node's edit must change
// (rewrite or drop) exactly want lines, or the benchmark fails: a world
// whose edit missed would measure as vxlan.
func editRules(b *testing.B, w *World, table string, edit func(line string) (string, bool), want int) {
	b.Helper()
	for _, n := range w.Nodes {
		ns := w.NodeNS(n.Cluster, n.Name)
		// Output, not combined: a warning on stderr must not be restored.
		saved, err := exec.Command("ip", "netns", "exec", ns, "iptables-save", "-t", table).Output()
		if err != nil {
			b.Fatalf("iptables-save -t %s in %s: %v", table, ns, err)
		}
		var kept []string
		changed := 0
		for _, l := range strings.Split(string(saved), "\n") {
			e, ok := edit(l)
			if ok {
				kept = append(kept, e)
			}
			if !ok || e != l {
				changed++
			}
		}
		if changed != want {
			b.Fatalf("%s: the edit changed %d lines of the %s table, want %d:\n%s", ns, changed, table, want, saved)
		}
		if out, err := runStdin(strings.Join(kept, "\n")+"\n", "ip", "netns", "exec", ns, "iptables-restore", "-w"); err != nil {
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
