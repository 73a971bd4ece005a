package desired

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestFactsCarryAgentsGatewayChoice: what an agent reports in status.gateways
// reaches the planner's facts of its node.
func TestFactsCarryAgentsGatewayChoice(t *testing.T) {
	var n1, n2 corev1.Node
	n1.Name, n2.Name = "n1", "n2"
	var nc v1alpha1.NodeConfig
	nc.Name = "n1"
	nc.Status.Gateways = []v1alpha1.GatewayChoice{{Cluster: "gw", Active: "g2"}, {Cluster: "own", Active: "o3"}}
	f := FactsOf([]corev1.Node{n1, n2}, []v1alpha1.NodeConfig{nc})
	if got := f.Nodes[0].Gateways; got["gw"] != "g2" || got["own"] != "o3" || len(got) != 2 {
		t.Errorf("n1 reports %v, want gw: g2, own: o3", got)
	}
	if got := f.Nodes[1].Gateways; got != nil {
		t.Errorf("n2 reports %v, want nothing", got)
	}
}
