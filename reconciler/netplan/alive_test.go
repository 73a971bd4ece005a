package netplan

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAliveInDataPlane: only a report that shows the gateway answering
// keeps a gateway in force for the data plane's sake: from a Ready node
// other than the gateway, proven (its probes had an answer since it chose
// the gateway), not finding it down. Reports of agents of earlier
// releases (no such fields) count as before.
func TestAliveInDataPlane(t *testing.T) {
	type rep struct {
		cluster, node string
		notReady      bool
		active        string
		unproven      bool
		down          []string
	}
	for _, c := range []struct {
		name string
		reps []rep
		want bool
	}{
		{"no report", nil, false},
		{"a Ready remote agent on g1", []rep{{cluster: "a", node: "a1", active: "g1"}}, true},
		{"a NotReady remote agent on g1 (its report may be old)", []rep{{cluster: "a", node: "a1", notReady: true, active: "g1"}}, false},
		{"a fresh agent on g1 with no answer yet", []rep{{cluster: "a", node: "a1", active: "g1", unproven: true}}, false},
		{"an agent on g1 that finds every candidate down", []rep{{cluster: "a", node: "a1", active: "g1", down: []string{"g1", "g2"}}}, false},
		{"an agent on g1 that finds only g2 down", []rep{{cluster: "a", node: "a1", active: "g1", down: []string{"g2"}}}, true},
		{"g1 on itself", []rep{{cluster: "gw", node: "g1", active: "g1"}}, false},
		{"g2, Ready, on g1", []rep{{cluster: "gw", node: "g2", active: "g1"}}, true},
		{"an agent on g2", []rep{{cluster: "a", node: "a1", active: "g2"}}, false},
		{"one bad, one good", []rep{{cluster: "a", node: "a1", notReady: true, active: "g1"}, {cluster: "a", node: "a2", active: "g1"}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			facts := Facts{"gw": {Nodes: []Node{{Name: "g1", Ready: false}, {Name: "g2", Ready: true}}, Gateway: "g1"}, "a": {Nodes: []Node{{Name: "a1", Ready: true}, {Name: "a2", Ready: true}}}}
			for _, r := range c.reps {
				cf := facts[r.cluster]
				i := slices.IndexFunc(cf.Nodes, func(n Node) bool { return n.Name == r.node })
				n := &cf.Nodes[i]
				n.Ready = !r.notReady
				n.Gateways = map[string]string{"gw": r.active}
				if r.unproven {
					n.GatewaysUnproven = map[string]bool{"gw": true}
				}
				if r.down != nil {
					n.GatewaysDown = map[string][]string{"gw": r.down}
				}
			}
			if got := aliveInDataPlane("gw", facts, "g1"); got != c.want {
				t.Errorf("alive %v, want %v", got, c.want)
			}
		})
	}
}

// TestGatewayNotReadyNoEvidence: b1 NotReady alone (b2 Ready long
// before): the plan moves to b2 unless an agent's report proves b1
// answers; a NotReady reporter, a fresh agent or one that finds b1 down
// prove nothing.
func TestGatewayNotReadyNoEvidence(t *testing.T) {
	now := time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		set  func(n *Node)
		want string
	}{
		{"proven report", func(n *Node) {}, "b1"},
		{"reporter NotReady", func(n *Node) { n.Ready = false }, "b2"},
		{"fresh agent, no answer yet", func(n *Node) { n.GatewaysUnproven = map[string]bool{"member-b": true} }, "b2"},
		{"agent finds b1 down (all down, it kept b1)", func(n *Node) { n.GatewaysDown = map[string][]string{"member-b": {"b1", "b2"}} }, "b2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, facts := loadCase(t, "testdata/mixed-global")
			mb := facts["member-b"]
			for i := range mb.Nodes {
				mb.Nodes[i].ReadySince = now.Add(-time.Hour)
				if mb.Nodes[i].Name == "b1" {
					mb.Nodes[i].Ready, mb.Nodes[i].ReadySince = false, now.Add(-time.Minute)
				}
			}
			mb.Gateway = "b1"
			facts["member-b"] = mb
			h := facts["host"]
			n := &h.Nodes[0]
			n.Gateways = map[string]string{"member-b": "b1"}
			n.GatewaysPlanned = map[string]string{"member-b": "b1"}
			c.set(n)
			if got := ComputeAt(spec, facts, now).Cluster("member-b").Gateway; got != c.want {
				t.Errorf("gateway %s, want %s", got, c.want)
			}
		})
	}
}

// TestFamilySplitProblem: an agent whose families chose differently
// (after an IPv6-only failover) gives no answer for the cluster (no vote,
// no sign of life) and the plan names it as a problem.
func TestFamilySplitProblem(t *testing.T) {
	spec, facts := loadCase(t, "testdata/mixed-global")
	mb := facts["member-b"]
	mb.Gateway = "b1"
	facts["member-b"] = mb
	a := facts["member-a"]
	a.Nodes[0].GatewaysSplit = map[string]string{"member-b": "vx-bridge b1, vx-bridge-6 b2"}
	plan := ComputeAt(spec, facts, time.Time{})
	if got := plan.Cluster("member-b").Gateway; got != "b1" {
		t.Errorf("gateway %s, want b1", got)
	}
	if !slices.ContainsFunc(plan.Problems, func(p string) bool {
		return strings.Contains(p, "cluster member-b") && strings.Contains(p, "member-a/a1 (vx-bridge b1, vx-bridge-6 b2)") && strings.Contains(p, "per IP family")
	}) {
		t.Errorf("problems %q, want one naming member-a/a1's family split", plan.Problems)
	}
}
