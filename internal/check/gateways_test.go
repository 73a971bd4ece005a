package check

import (
	"strings"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

func TestGatewayChecks(t *testing.T) {
	topo := &v1alpha1.KosmosTopology{Spec: v1alpha1.TopologySpec{Clusters: []v1alpha1.ClusterSpec{
		{Name: "a", Network: v1alpha1.ClusterNetwork{Mode: v1alpha1.ModeP2P}},
		{Name: "b", Network: v1alpha1.ClusterNetwork{Mode: v1alpha1.ModeGateway}},
	}}}
	choice := func(node, active string) AgentChoice { return AgentChoice{Node: node, Gateway: "b", Active: active} }
	down := func(node, active string, down ...string) AgentChoice {
		return AgentChoice{Node: node, Gateway: "b", Active: active, Down: down}
	}
	for _, c := range []struct {
		name     string
		clusters []ClusterReport
		result   string
		detail   string
	}{
		{"no reports: skip", []ClusterReport{{Name: "a"}, {Name: "b"}}, "SKIP", "no agent reports"},
		{"every agent on one candidate", []ClusterReport{
			{Name: "a", Choices: []AgentChoice{choice("a1", "b1"), choice("a2", "b1")}},
			{Name: "b", Choices: []AgentChoice{choice("b3", "b1")}},
		}, "PASS", "all 3 agents send through b1"},
		{"a split names both sides, the larger first", []ClusterReport{
			{Name: "a", Choices: []AgentChoice{choice("a1", "b2"), choice("a2", "b2")}},
			{Name: "b", Choices: []AgentChoice{choice("b3", "b1")}},
		}, "FAIL", "agents disagree: b2 by 2 (a/a1, a/a2); b1 by 1 (b/b3)"},
		{"a candidate cut off is no disagreement", []ClusterReport{
			{Name: "a", Choices: []AgentChoice{down("a1", "b2", "b1"), down("a2", "b2", "b1")}},
			{Name: "b", Choices: []AgentChoice{down("b1", "b1", "b2"), down("b2", "b2", "b1")}},
		}, "PASS", "all 3 agents send through b2; b1 cut off"},
		{"cut off only when every other agent finds it down", []ClusterReport{
			{Name: "a", Choices: []AgentChoice{down("a1", "b2", "b1"), choice("a2", "b2")}},
			{Name: "b", Choices: []AgentChoice{down("b1", "b1", "b2")}},
		}, "FAIL", "agents disagree: b2 by 2 (a/a1, a/a2); b1 by 1 (b/b1)"},
		{"cut off only when it finds down what the others use", []ClusterReport{
			{Name: "a", Choices: []AgentChoice{down("a1", "b2", "b1")}},
			{Name: "b", Choices: []AgentChoice{choice("b1", "b1")}},
		}, "FAIL", "agents disagree"},
		{"not cut off while a remote agent still sends through it", []ClusterReport{
			{Name: "a", Choices: []AgentChoice{choice("a1", "b1"), down("a2", "b2", "b1")}},
			{Name: "b", Choices: []AgentChoice{down("b1", "b1", "b2")}},
		}, "FAIL", "agents disagree: b1 by 2 (a/a1, b/b1); b2 by 1 (a/a2)"},
		{"candidates cut off from each other, nobody else reporting, are no pass", []ClusterReport{
			{Name: "b", Choices: []AgentChoice{down("b1", "b1", "b2"), down("b2", "b2", "b1")}},
		}, "FAIL", "every agent reporting is cut off from the others (b1, b2)"},
		{"an agent that finds every candidate down is no agreement", []ClusterReport{
			{Name: "a", Choices: []AgentChoice{down("a1", "b1", "b1", "b2")}},
			{Name: "b", Choices: []AgentChoice{down("b1", "b1", "b2"), down("b2", "b2", "b1")}},
		}, "FAIL", "a/a1 find every candidate down"},
		{"choices for other clusters do not count", []ClusterReport{
			{Name: "a", Choices: []AgentChoice{choice("a1", "b1"), {Node: "a1", Gateway: "c", Active: "c9"}}},
		}, "PASS", "all 1 agents send through b1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := gatewayChecks(topo, c.clusters)
			if len(got) != 1 || got[0].Name != "cluster b gateway choices" || got[0].Result != c.result || !strings.Contains(got[0].Detail, c.detail) {
				t.Fatalf("got %+v, want one row %s containing %q", got, c.result, c.detail)
			}
		})
	}
	long := make([]AgentChoice, 6)
	for i := range long {
		long[i] = choice(string(rune('a'+i)), "b1")
	}
	got := gatewayChecks(topo, []ClusterReport{{Name: "a", Choices: long}, {Name: "b", Choices: []AgentChoice{choice("x", "b2")}}})
	if !strings.Contains(got[0].Detail, "and 2 more") {
		t.Errorf("a long list is not abbreviated: %s", got[0].Detail)
	}
}
