package desired

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestFactsCarryAgentsGatewayChoice: what an agent reports in status.gateways
// reaches the planner's facts of its node.
func TestFactsCarryAgentsGatewayChoice(t *testing.T) {
	var n1, n2 corev1.Node
	n1.Name, n2.Name = "n1", "n2"
	var nc v1alpha1.NodeConfig
	nc.Name = "n1"
	moved := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	nc.Status.Gateways = []v1alpha1.GatewayChoice{{Cluster: "gw", Active: "g2", Since: metav1.NewTime(moved)}, {Cluster: "own", Active: "o3"}}
	f := FactsOf([]corev1.Node{n1, n2}, []v1alpha1.NodeConfig{nc})
	if got := f.Nodes[0].Gateways; got["gw"] != "g2" || got["own"] != "o3" || len(got) != 2 {
		t.Errorf("n1 reports %v, want gw: g2, own: o3", got)
	}
	if got := f.Nodes[0].GatewaysSince; !got["gw"].Equal(moved) || len(got) != 1 {
		t.Errorf("n1 reports moves %v, want gw at %v only", got, moved)
	}
	if got := f.Nodes[1].Gateways; got != nil {
		t.Errorf("n2 reports %v, want nothing", got)
	}
	// Families that chose differently give no vote for the cluster.
	nc.Status.Gateways = []v1alpha1.GatewayChoice{{Cluster: "gw", Device: "vx-bridge", Active: "g1"}, {Cluster: "gw", Device: "vx-bridge-6", Active: "g2"}, {Cluster: "own", Active: "o3"}}
	f = FactsOf([]corev1.Node{n1, n2}, []v1alpha1.NodeConfig{nc})
	if got := f.Nodes[0].Gateways; got["own"] != "o3" || len(got) != 1 {
		t.Errorf("n1 reports %v, want own: o3 only (gw split by family)", got)
	}
}
