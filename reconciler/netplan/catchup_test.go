package netplan

import (
	"slices"
	"testing"
	"time"
)

func TestAgentsChoice(t *testing.T) {
	reports := func(cluster string, picks ...string) []Node {
		var out []Node
		for i, p := range picks {
			n := Node{Name: cluster + "-n" + string(rune('0'+i))}
			if p != "" {
				n.Gateways = map[string]string{"gw": p}
			}
			out = append(out, n)
		}
		return out
	}
	gwNodes := []Node{{Name: "g1"}, {Name: "g2"}, {Name: "g3"}}
	for _, c := range []struct {
		name  string
		facts Facts
		want  string
	}{
		{"no reports", Facts{"gw": {Nodes: gwNodes, Gateway: "g1"}}, ""},
		{"all on the plan's gateway", Facts{"gw": {Nodes: gwNodes}, "a": {Nodes: reports("a", "g1", "g1")}}, "g1"},
		{"majority moved to g2", Facts{"gw": {Nodes: gwNodes}, "a": {Nodes: reports("a", "g2", "g2", "g1")}}, "g2"},
		{"half moved: no majority", Facts{"gw": {Nodes: gwNodes}, "a": {Nodes: reports("a", "g2", "g1")}}, ""},
		{"split three ways: no majority", Facts{"gw": {Nodes: gwNodes}, "a": {Nodes: reports("a", "g1", "g2", "g3")}}, ""},
		{"silent agents do not count", Facts{"gw": {Nodes: gwNodes}, "a": {Nodes: reports("a", "g2", "", "", "")}}, "g2"},
		{"reports across clusters add up", Facts{"gw": {Nodes: gwNodes}, "a": {Nodes: reports("a", "g3", "g1")}, "b": {Nodes: reports("b", "g3")}}, "g3"},
		{"a name not in the cluster is not counted", Facts{"gw": {Nodes: gwNodes}, "a": {Nodes: reports("a", "zz", "zz", "g2")}}, "g2"},
		{"an unknown cluster: nothing", Facts{"a": {Nodes: reports("a", "g2")}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got, _ := agentsChoice("gw", c.facts, time.Time{}); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestPlanFollowsAgents: when most agents report they moved to a standby,
// the plan re-elects it and keeps it (sticky) once the old gateway is back.
func TestPlanFollowsAgents(t *testing.T) {
	spec, facts := loadCase(t, "testdata/mixed-global")
	before := Compute(spec, facts).Cluster("member-b")
	if before.Gateway != "b1" || !slices.Equal(before.Standby, []string{"b2"}) {
		t.Fatalf("gateway %s, standby %v; want b1, [b2]", before.Gateway, before.Standby)
	}
	report := func(cluster string, active string) {
		f := facts[cluster]
		nodes := slices.Clone(f.Nodes)
		for i := range nodes {
			nodes[i].Gateways = map[string]string{"member-b": active}
		}
		facts[cluster] = ClusterFacts{Nodes: nodes, Gateway: f.Gateway}
	}
	report("host", "b2")
	report("member-a", "b2")
	facts["member-b"] = ClusterFacts{Nodes: facts["member-b"].Nodes, Gateway: "b1"}
	after := Compute(spec, facts).Cluster("member-b")
	if after.Gateway != "b2" || !slices.Equal(after.Standby, []string{"b1"}) {
		t.Errorf("after the agents moved to b2: gateway %s, standby %v; want b2, [b1]", after.Gateway, after.Standby)
	}
	// Next pass: b2 is in force and the agents stay on it (first in the
	// plan's order now): nothing moves back.
	facts["member-b"] = ClusterFacts{Nodes: facts["member-b"].Nodes, Gateway: "b2"}
	if again := Compute(spec, facts).Cluster("member-b"); again.Gateway != "b2" {
		t.Errorf("next pass: gateway %s, want b2 (sticky)", again.Gateway)
	}
}

// TestAgentsChoiceByCluster: the gateway cluster's own nodes do not vote;
// a majority of one remote cluster (or of the remote clusters together)
// that left the gateway in force for one same candidate re-elects it, but
// only once their moves are older than the hold.
func TestAgentsChoiceByCluster(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	old, fresh := now.Add(-10*time.Second), now.Add(-time.Second)
	reports := func(cluster string, since time.Time, picks ...string) []Node {
		var out []Node
		for i, p := range picks {
			n := Node{Name: cluster + "-n" + string(rune('0'+i)), Gateways: map[string]string{"gw": p}}
			if !since.IsZero() {
				n.GatewaysSince = map[string]time.Time{"gw": since}
			}
			out = append(out, n)
		}
		return out
	}
	gw := func(own ...string) ClusterFacts {
		nodes := []Node{{Name: "g1"}, {Name: "g2"}, {Name: "g3"}}
		for i, p := range own {
			nodes = append(nodes, Node{Name: "gw-n" + string(rune('0'+i)), Gateways: map[string]string{"gw": p}})
		}
		return ClusterFacts{Nodes: nodes, Gateway: "g1"}
	}
	for _, c := range []struct {
		name  string
		facts Facts
		want  string
	}{
		{"own nodes stay, one remote cluster moved: re-elect", Facts{"gw": gw("g1", "g1", "g1", "g1", "g1"), "a": {Nodes: reports("a", old, "g2", "g2")}}, "g2"},
		{"own nodes moved, remote clusters did not: keep", Facts{"gw": gw("g2", "g2", "g2"), "a": {Nodes: reports("a", old, "g1")}}, ""},
		{"one remote cluster of two moved, outvoted together: that cluster decides", Facts{"gw": gw(), "a": {Nodes: reports("a", old, "g2", "g2")}, "b": {Nodes: reports("b", old, "g1", "g1", "g1", "g1")}}, "g2"},
		{"remote clusters together: a majority over both", Facts{"gw": gw(), "a": {Nodes: reports("a", old, "g3", "g1")}, "b": {Nodes: reports("b", old, "g3", "g1", "g3")}}, "g3"},
		{"moves younger than the hold do not count", Facts{"gw": gw(), "a": {Nodes: reports("a", fresh, "g2", "g2")}}, ""},
		{"a move with no time counts", Facts{"gw": gw(), "a": {Nodes: reports("a", time.Time{}, "g2", "g2")}}, "g2"},
		{"on the gateway in force: nothing to follow", Facts{"gw": gw(), "a": {Nodes: reports("a", old, "g1", "g1")}}, ""},
		{"half of a cluster moved: no majority", Facts{"gw": gw(), "a": {Nodes: reports("a", old, "g2", "g1")}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got, _ := agentsChoice("gw", c.facts, now); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}
