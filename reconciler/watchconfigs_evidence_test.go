package reconciler

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestAgentViewWakesOnEvidence: an agent whose probes find a candidate
// down (or up again), or whose candidate in use answers for the first
// time, wakes the reconciler: the split and what keeps a NotReady gateway
// depend on it.
func TestAgentViewWakesOnEvidence(t *testing.T) {
	yes, no := true, false
	with := func(answered *bool, down ...string) *v1alpha1.NodeConfig {
		n := &v1alpha1.NodeConfig{Status: v1alpha1.NodeConfigStatus{Contract: v1alpha1.ContractShared,
			Conditions: []metav1.Condition{{Type: "Applied", Status: metav1.ConditionTrue}},
			Peers:      []v1alpha1.AppliedPeers{{Name: "b.0-of-1", Generation: 1}},
			Gateways:   []v1alpha1.GatewayChoice{{Cluster: "gw", Active: "g1", Planned: "g1", Answered: answered, Down: down}}}}
		n.Name = "n1"
		return n
	}
	objs := []*v1alpha1.NodeConfig{with(&no), with(&yes), with(&yes), with(&yes, "g2"), with(&yes, "g2"), with(&yes)}
	wakes := []bool{false, true, false, true, false, true}
	v := agentView{}
	for i, nc := range objs {
		typ := watch.Modified
		if i == 0 {
			typ = watch.Added
		}
		if got := v.observe(typ, nc); got != wakes[i] {
			t.Errorf("event %d: wakes %v, want %v", i, got, wakes[i])
		}
	}
}
