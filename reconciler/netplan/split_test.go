package netplan

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// agentsWorld plays the agents of the remote clusters of member-b
// (testdata/mixed-global) against the plan: each agent reads the plan's
// candidates (gateway first), sends through the first one it can reach
// (its probes find the others down) and reports that, as the agents do.
type agentsWorld struct {
	reach map[string][]string // by remote cluster: the candidates its agents reach
	// legacy: the agents report no down candidates (an earlier release).
	legacy bool
}

// feed sets the facts the next pass reads after plan p was applied at now:
// member-b's NodeConfigs name p's gateway, every remote agent planned it
// and chose as its reachability allows (since now when it moved).
func (w agentsWorld) feed(facts Facts, p *ClusterPlan, now time.Time) {
	cands := slices.Concat([]string{p.Gateway}, p.Standby)
	mb := facts["member-b"]
	mb.Gateway = p.Gateway
	facts["member-b"] = mb
	for cluster, reach := range w.reach {
		cf := facts[cluster]
		nodes := slices.Clone(cf.Nodes)
		for i := range nodes {
			n := &nodes[i]
			active, down := "", []string(nil)
			for _, c := range cands {
				switch {
				case !slices.Contains(reach, c):
					down = append(down, c)
				case active == "":
					active = c
				}
			}
			if active == "" {
				active = cands[0] // none reachable: it keeps the first
			}
			since := n.GatewaysSince["member-b"]
			if n.Gateways["member-b"] != active || since.IsZero() {
				since = now
			}
			n.Gateways = map[string]string{"member-b": active}
			n.GatewaysSince = map[string]time.Time{"member-b": since}
			n.GatewaysPlanned = map[string]string{"member-b": cands[0]}
			n.GatewaysDown = nil
			if !w.legacy && len(down) > 0 {
				n.GatewaysDown = map[string][]string{"member-b": down}
			}
		}
		cf.Nodes = nodes
		facts[cluster] = cf
	}
}

// TestGatewaySplitDoesNotFlipFlop: with asymmetric reachability (host's
// agents reach only b1, member-a's only b2) the plan must not follow one
// side and then the other (b1 → b2 → b1 … at every pass, each one
// rewriting every NodeConfig and ClusterPeers): it keeps the gateway in
// force and names the split as a problem. A failure every cluster sees
// (b1 dead for all) still moves the plan, once.
func TestGatewaySplitDoesNotFlipFlop(t *testing.T) {
	start := time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name    string
		w       agentsWorld
		want    []string // the plan's gateway at each pass
		problem string   // in the plan's problems at the last pass ("": none about member-b's gateway)
	}{
		{"host reaches only b1, member-a only b2",
			agentsWorld{reach: map[string][]string{"host": {"b1"}, "member-a": {"b2"}}},
			[]string{"b1", "b1", "b1", "b1", "b1", "b1", "b1", "b1"}, "most of cluster host find b2 down"},
		{"member-a reaches only b1, host only b2",
			agentsWorld{reach: map[string][]string{"host": {"b2"}, "member-a": {"b1"}}},
			[]string{"b1", "b1", "b1", "b1", "b1", "b1", "b1", "b1"}, "gateway split"},
		{"b1 dead for everyone: one move, then it stays",
			agentsWorld{reach: map[string][]string{"host": {"b2"}, "member-a": {"b2"}}},
			[]string{"b1", "b2", "b2", "b2", "b2", "b2", "b2", "b2"}, ""},
		{"everyone reaches both: nothing moves",
			agentsWorld{reach: map[string][]string{"host": {"b1", "b2"}, "member-a": {"b1", "b2"}}},
			[]string{"b1", "b1", "b1", "b1", "b1", "b1", "b1", "b1"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, facts := loadCase(t, "testdata/mixed-global")
			now := start
			var got []string
			var problems []string
			for range c.want {
				plan := ComputeAt(spec, facts, now)
				mb := plan.Cluster("member-b")
				got = append(got, mb.Gateway)
				problems = plan.Problems
				// The agents act on it; the next pass comes after the
				// hold (a flip-flop is one every ~4 s).
				c.w.feed(facts, mb, now)
				now = now.Add(CatchUpHold + time.Second)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("gateway at each pass %v, want %v", got, c.want)
			}
			found := slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "gateway split") })
			switch {
			case c.problem == "" && found:
				t.Errorf("problems %q, want no gateway split", problems)
			case c.problem != "" && !slices.ContainsFunc(problems, func(p string) bool {
				return strings.Contains(p, c.problem) && strings.Contains(p, "cluster member-b")
			}):
				t.Errorf("problems %q, want one with %q", problems, c.problem)
			}
		})
	}
}

// TestAgentsChoiceSplit: the catch-up moves the plan only to a candidate
// no remote cluster's majority moved away from or finds down.
func TestAgentsChoiceSplit(t *testing.T) {
	type agent struct {
		active string
		down   []string
	}
	reports := func(cluster string, as ...agent) []Node {
		var out []Node
		for i, a := range as {
			n := Node{Name: cluster + "-n" + string(rune('0'+i)), Gateways: map[string]string{"gw": a.active}}
			if a.down != nil {
				n.GatewaysDown = map[string][]string{"gw": a.down}
			}
			out = append(out, n)
		}
		return out
	}
	gw := ClusterFacts{Nodes: []Node{{Name: "g1"}, {Name: "g2"}, {Name: "g3"}}, Gateway: "g1"}
	on := func(a string, down ...string) agent { return agent{a, down} }
	for _, c := range []struct {
		name      string
		facts     Facts
		want      string
		wantSplit bool
	}{
		{"both clusters moved to g2", Facts{"gw": gw, "a": {Nodes: reports("a", on("g2", "g1"), on("g2", "g1"))}, "b": {Nodes: reports("b", on("g2", "g1"))}}, "g2", false},
		{"a moved to g2, b to g3", Facts{"gw": gw, "a": {Nodes: reports("a", on("g2", "g1"), on("g2", "g1"))}, "b": {Nodes: reports("b", on("g3", "g1"))}}, "", true},
		{"a moved to g2, b stays on g1 and finds g2 down", Facts{"gw": gw, "a": {Nodes: reports("a", on("g2", "g1"), on("g2", "g1"))}, "b": {Nodes: reports("b", on("g1", "g2"), on("g1", "g2"))}}, "", true},
		{"a moved to g2, one of b's three finds g2 down", Facts{"gw": gw, "a": {Nodes: reports("a", on("g2", "g1"))}, "b": {Nodes: reports("b", on("g1", "g2"), on("g1"), on("g1"))}}, "g2", false},
		{"a moved to g2, b stays on g1 and reports nothing down (it can follow)", Facts{"gw": gw, "a": {Nodes: reports("a", on("g2", "g1"))}, "b": {Nodes: reports("b", on("g1"), on("g1"))}}, "g2", false},
		{"a moved to g2, b of an earlier release on g1", Facts{"gw": gw, "a": {Nodes: reports("a", on("g2"))}, "b": {Nodes: reports("b", agent{active: "g1"})}}, "g2", false},
		{"no move, b finds g2 down", Facts{"gw": gw, "b": {Nodes: reports("b", on("g1", "g2"))}}, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, split := agentsChoice("gw", c.facts, time.Time{})
			if got != c.want || (split != "") != c.wantSplit {
				t.Errorf("got %q, split %q; want %q, split %v", got, split, c.want, c.wantSplit)
			}
			if split != "" && !strings.Contains(split, "cluster gw") {
				t.Errorf("split %q does not name the gateway cluster", split)
			}
		})
	}
}
