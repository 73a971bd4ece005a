package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/sandbox"
	"kosmos.io/kosmos/internal/testinfra/networld"
	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// gwCluster is the Gateway-mode cluster of topology.example.yaml with two
// gateway candidates (gateway.replicas: 2).
const gwCluster = "member-b"

// pingGapSteps is the longest run of pings a pair through a failed gateway
// may lose in the full suite (make chaos): 1 s of pings every 100 ms
// (issue 15: traffic resumes within 1 s). The short suite in make test,
// which shares the machine with the other packages' tests, allows
// pingGapStepsShort and prints every gap: the agents' detection (probe
// timeouts, misses) slows with the load, and the 1 s figure is held by
// TestGatewayFailover and BenchmarkGatewayFailover in the packet world.
const (
	pingGapSteps      = 10
	pingGapStepsShort = 20
)

// maxGapSteps is the failover gap the running suite allows.
func maxGapSteps() int {
	if *chaosLong {
		return pingGapSteps
	}
	return pingGapStepsShort
}

// pingReturnSteps is the longest gap a pair may see when traffic returns
// to a candidate after the failback hold (at most one such gap).
const pingReturnSteps = 3

// gatewayLinkDown is the step "member-b's active gateway: underlay link
// down, then up". The gateway in force is read from the agents' reports
// (NodeConfig status.gateways); the pings of this step run from and to the
// pod on member-b's other candidate (the pod on the failed machine has no
// way out at all), so every pair with member-b at one end crosses the
// failed gateway until the agents move.
type gatewayLinkDown struct {
	c           *chaos
	gw, standby string                         // member-b's gateway in force, and the candidate left
	nodes       map[string][]networld.NodeSpec // the world, the standby first in member-b
	clusters    []reconciler.Cluster           // API clients, connected once
}

// every rate-limits a condition polled with package poll to one real try
// per period (the rest answer "not yet"), so that the test's own API reads
// do not load the machine while the agents fail over.
func every(period time.Duration, cond func() error) func() error {
	var next time.Time
	var last error = errors.New("not tried yet")
	return func() error {
		if now := time.Now(); now.After(next) {
			next, last = now.Add(period), cond()
		}
		return last
	}
}

// pairs finds the gateway in force and lists the step's ping pairs.
func (g *gatewayLinkDown) pairs(t *testing.T, ctx context.Context) []sandbox.PingPair {
	nodes, err := sandbox.DataplaneNodes(g.c.sb.Topology, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes[gwCluster]) != 2 {
		t.Fatalf("%s has %d machines, want 2 (both candidates)", gwCluster, len(nodes[gwCluster]))
	}
	if g.clusters, err = reconciler.ConnectContexts(g.c.sb.Topology, g.c.sb.KubeconfigPath); err != nil {
		t.Fatal(err)
	}
	for _, cl := range g.clusters {
		if cl.Err != nil {
			t.Fatalf("cluster %s: %v", cl.Name, cl.Err)
		}
	}
	choices := g.choices(t, ctx)
	g.gw = soleActive(choices)
	if g.gw == "" {
		t.Fatalf("the agents do not agree on %s's gateway: %v", gwCluster, choices)
	}
	ms := nodes[gwCluster]
	if ms[0].Name == g.gw {
		ms[0], ms[1] = ms[1], ms[0]
	}
	if ms[1].Name != g.gw {
		t.Fatalf("the gateway in force %s is no machine of %s", g.gw, gwCluster)
	}
	g.standby, g.nodes = ms[0].Name, nodes
	t.Logf("%s's gateway in force: %s; the pings run from and to the pod on %s", gwCluster, g.gw, g.standby)
	return sandbox.PingPairs(chaosPrefix, g.c.sb.Topology, nodes)
}

// run takes the gateway's underlay link down; the agents move to the
// standby on their probes alone, the plan follows, the checks pass with the
// link still down; then the link comes back up.
func (g *gatewayLinkDown) run(t *testing.T, ctx context.Context) {
	hold(t, 2*time.Second) // pings through the gateway in force first
	up := false
	t.Cleanup(func() { // never leave the machine cut off
		if !up {
			_ = g.c.sb.SetUnderlay(gwCluster, g.gw, true)
		}
	})
	t.Logf("ip netns exec %s ip link set %s down", sandbox.NodeNS(chaosPrefix, gwCluster, g.gw), sandbox.UnderlayDevice)
	if err := g.c.sb.SetUnderlay(gwCluster, g.gw, false); err != nil {
		t.Fatal(err)
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil { // the failover's timing depends on it
		t.Logf("load average at the link-down (%d CPUs): %s", runtime.NumCPU(), strings.TrimSpace(string(load)))
	}
	// Every agent outside the failed machine reports the standby.
	moved := poll.NoError(t, time.Minute, "every agent to report "+g.standby, every(250*time.Millisecond, func() error {
		return g.allOn(g.choices(t, ctx), g.standby, g.gw)
	}))
	t.Logf("link down: every other agent reports %s after %s", g.standby, moved.Round(10*time.Millisecond))
	for _, ch := range g.choices(t, ctx) {
		t.Logf("  %s: active %s, planned %s, down %v", ch.node, ch.active, ch.planned, ch.down)
	}
	// The control plane catches up (after the agents' moves have lasted
	// 3 s): the plan names the standby first.
	caught := poll.NoError(t, time.Minute, "the plan to name "+g.standby+" first", every(250*time.Millisecond, func() error {
		plans := g.planned(t, ctx)
		if len(plans) == 0 {
			return fmt.Errorf("no ClusterPeers of %s in the other clusters", gwCluster)
		}
		for where, first := range plans {
			if first != g.standby {
				return fmt.Errorf("the plan in %s names %q first for %s", where, first, gwCluster)
			}
		}
		return nil
	}))
	t.Logf("link down: the plan names %s first after %s more", g.standby, caught.Round(10*time.Millisecond))
	conv := g.c.convergedOn(t, ctx, g.nodes)
	t.Logf("link down: kosmos check passes, kosmos diff empty after %s more", conv.Round(100*time.Millisecond))
	if err := g.allOn(g.choices(t, ctx), g.standby, g.gw); err != nil {
		t.Errorf("link down, converged: %v", err)
	}
	for where, first := range g.planned(t, ctx) {
		if first != g.standby {
			t.Errorf("link down, converged: the plan in %s names %q first for %s, want the new active %s", where, first, gwCluster, g.standby)
		}
	}

	t.Logf("ip netns exec %s ip link set %s up", sandbox.NodeNS(chaosPrefix, gwCluster, g.gw), sandbox.UnderlayDevice)
	if err := g.c.sb.SetUnderlay(gwCluster, g.gw, true); err != nil {
		t.Fatal(err)
	}
	up = true
	// The machine back, its agent too sends through the candidate in use
	// once the failback hold is over, and finds no candidate down.
	back := poll.NoError(t, time.Minute, "every agent, "+g.gw+"'s too, on one live gateway", every(250*time.Millisecond, func() error {
		choices := g.choices(t, ctx)
		active := soleActive(choices)
		if active == "" {
			return fmt.Errorf("the agents disagree: %v", choices)
		}
		for _, ch := range choices {
			if len(ch.down) > 0 {
				return fmt.Errorf("%s finds %v down", ch.node, ch.down)
			}
		}
		return nil
	}))
	t.Logf("link up: every agent on %s, none finds a candidate down, after %s", soleActive(g.choices(t, ctx)), back.Round(10*time.Millisecond))
}

// judge is the step's loss rule: a pair with member-b at one end may lose
// one run of at most maxGapSteps pings (1 s in make chaos, 2 s in make
// test) when the gateway fails and at most one short run when traffic
// returns; every other pair loses nothing.
func (g *gatewayLinkDown) judge(t *testing.T, pgs []*pinger) {
	for _, pg := range pgs {
		gaps, err := pingGaps(pg.out.String())
		if err != nil {
			t.Errorf("%s: %v", pg.pair.Name, err)
			continue
		}
		through := strings.Contains(pg.pair.Name, " "+gwCluster+"/")
		t.Logf("link down/up: %s: gaps %v × 100 ms", pg.pair.Name, gaps)
		if err := judgeGaps(gaps, through, maxGapSteps()); err != nil {
			t.Errorf("link down/up: %s: %v", pg.pair.Name, err)
		}
	}
}

// judgeGaps says whether a pair's runs of lost pings (in order) keep the
// rule: none for a pair that does not cross the gateway; for one that
// does, the first at most maxSteps (the failover), then at most one of at
// most pingReturnSteps (the return after the hold).
func judgeGaps(gaps []int, through bool, maxSteps int) error {
	switch {
	case !through && len(gaps) > 0:
		return fmt.Errorf("lost pings %v, want none (it does not cross %s's gateway)", gaps, gwCluster)
	case len(gaps) == 0:
		return nil
	case gaps[0] > maxSteps:
		return fmt.Errorf("traffic stopped for %d × 100 ms at the failover, want at most %d", gaps[0], maxSteps)
	case len(gaps) > 2:
		return fmt.Errorf("%d gaps %v, want at most the failover and one short gap on return", len(gaps), gaps)
	case len(gaps) == 2 && gaps[1] > pingReturnSteps:
		return fmt.Errorf("a gap of %d × 100 ms after the failover, want at most %d", gaps[1], pingReturnSteps)
	}
	return nil
}

var pingReply = regexp.MustCompile(`bytes from .*icmp_seq=(\d+)`)

// pingGaps reads the output of `ping` (a reply per line, then the summary)
// and returns the runs of consecutive unanswered requests, in order, those
// at the end included.
func pingGaps(out string) ([]int, error) {
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("ping printed no summary:\n%s", out)
	}
	sent, _ := strconv.Atoi(m[1])
	got := map[int]bool{}
	for _, r := range pingReply.FindAllStringSubmatch(out, -1) {
		seq, _ := strconv.Atoi(r[1])
		got[seq] = true
	}
	var gaps []int
	run := 0
	for seq := 1; seq <= sent; seq++ {
		if got[seq] {
			if run > 0 {
				gaps = append(gaps, run)
			}
			run = 0
			continue
		}
		run++
	}
	if run > 0 {
		gaps = append(gaps, run)
	}
	return gaps, nil
}

// agentChoice is one agent's report on member-b's gateway.
type agentChoice struct {
	node, active, planned string
	down                  []string
}

// choices reads what every agent reports of member-b's gateway.
func (g *gatewayLinkDown) choices(t *testing.T, ctx context.Context) []agentChoice {
	t.Helper()
	var out []agentChoice
	for _, cl := range g.clusters {
		var ncs v1alpha1.NodeConfigList
		if err := cl.Client.List(ctx, &ncs); err != nil {
			t.Fatalf("cluster %s: %v", cl.Name, err)
		}
		for _, nc := range ncs.Items {
			for _, g := range nc.Status.Gateways {
				if g.Cluster == gwCluster {
					out = append(out, agentChoice{node: cl.Name + "/" + nc.Name, active: g.Active, planned: g.Planned, down: g.Down})
				}
			}
		}
	}
	return out
}

// soleActive is the candidate every agent sends through, "" when they
// disagree or none reports.
func soleActive(choices []agentChoice) string {
	active := ""
	for _, ch := range choices {
		if active != "" && ch.active != active {
			return ""
		}
		active = ch.active
	}
	return active
}

// allOn says whether every agent but the one on the failed machine (cut
// off, it reports what it can see) sends through want, having planned it
// or moved to it.
func (g *gatewayLinkDown) allOn(choices []agentChoice, want, failed string) error {
	var off []string
	n := 0
	for _, ch := range choices {
		if ch.node == gwCluster+"/"+failed {
			continue
		}
		n++
		if ch.active != want {
			off = append(off, fmt.Sprintf("%s on %s", ch.node, ch.active))
		}
	}
	if n == 0 {
		return fmt.Errorf("no agent reports a choice for %s", gwCluster)
	}
	if len(off) > 0 {
		slices.Sort(off)
		return fmt.Errorf("%d of %d agents not on %s: %s", len(off), n, want, strings.Join(off, ", "))
	}
	return nil
}

// planned is, by cluster, the gateway the plan puts first for member-b
// (spec.gateways of its ClusterPeers in the other clusters).
func (g *gatewayLinkDown) planned(t *testing.T, ctx context.Context) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, cl := range g.clusters {
		if cl.Name == gwCluster {
			continue
		}
		var cps v1alpha1.ClusterPeersList
		if err := cl.Client.List(ctx, &cps); err != nil {
			t.Fatalf("cluster %s: %v", cl.Name, err)
		}
		for _, cp := range cps.Items {
			if cp.Spec.Cluster == gwCluster && len(cp.Spec.Gateways) > 0 {
				out[cl.Name+"/"+cp.Name] = cp.Spec.Gateways[0]
			}
		}
	}
	return out
}

// TestPingGaps: the runs of lost pings read from ping's output.
func TestPingGaps(t *testing.T) {
	reply := func(seq int) string {
		return fmt.Sprintf("64 bytes from 100.65.1.2: icmp_seq=%d ttl=62 time=0.1 ms\n", seq)
	}
	out := func(sent int, seqs ...int) string {
		var b strings.Builder
		b.WriteString("PING 100.65.1.2 (100.65.1.2) 56(84) bytes of data.\n")
		for _, s := range seqs {
			b.WriteString(reply(s))
		}
		fmt.Fprintf(&b, "\n--- 100.65.1.2 ping statistics ---\n%d packets transmitted, %d received, 0%% packet loss, time 1000ms\n", sent, len(seqs))
		return b.String()
	}
	for _, tc := range []struct {
		name string
		out  string
		want []int
	}{
		{"none lost", out(4, 1, 2, 3, 4), nil},
		{"one run", out(8, 1, 2, 6, 7, 8), []int{3}},
		{"first lost", out(3, 2, 3), []int{1}},
		{"two runs and the tail", out(10, 1, 3, 4, 7, 8), []int{1, 2, 2}},
		{"nothing answered", out(5), []int{5}},
	} {
		got, err := pingGaps(tc.out)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: gaps %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := pingGaps("ping: connect: Network is unreachable\n"); err == nil {
		t.Error("no summary: no error")
	}
}

// TestJudgeGaps: the loss rule of the link-down step.
func TestJudgeGaps(t *testing.T) {
	for _, tc := range []struct {
		gaps    []int
		through bool
		ok      bool
	}{
		{nil, false, true},
		{[]int{1}, false, false},
		{nil, true, true},
		{[]int{7}, true, true},
		{[]int{10}, true, true},
		{[]int{11}, true, false},
		{[]int{7, 2}, true, true},
		{[]int{7, 4}, true, false},
		{[]int{7, 1, 1}, true, false},
	} {
		if err := judgeGaps(tc.gaps, tc.through, pingGapSteps); (err == nil) != tc.ok {
			t.Errorf("gaps %v through %v: %v, want ok %v", tc.gaps, tc.through, err, tc.ok)
		}
	}
}
