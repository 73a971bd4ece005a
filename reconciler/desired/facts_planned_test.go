package desired

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestFactsCarryPlannedGateway: the candidate an agent's config put first
// reaches the facts of its node, per cluster it gave an answer for; agents
// of earlier releases (no planned) and families that planned differently
// give none.
func TestFactsCarryPlannedGateway(t *testing.T) {
	var n1 corev1.Node
	n1.Name = "n1"
	for _, c := range []struct {
		name string
		gs   []v1alpha1.GatewayChoice
		want map[string]string
	}{
		{"planned per cluster", []v1alpha1.GatewayChoice{{Cluster: "gw", Active: "g2", Planned: "g1"}, {Cluster: "own", Active: "o1", Planned: "o1"}}, map[string]string{"gw": "g1", "own": "o1"}},
		{"an earlier release: none", []v1alpha1.GatewayChoice{{Cluster: "gw", Active: "g2"}}, nil},
		{"families planned differently: none for that cluster", []v1alpha1.GatewayChoice{{Cluster: "gw", Device: "vx-bridge", Active: "g2", Planned: "g1"}, {Cluster: "gw", Device: "vx-bridge-6", Active: "g2", Planned: "g2"}}, nil},
		{"families chose differently: no answer, so no planned", []v1alpha1.GatewayChoice{{Cluster: "gw", Device: "vx-bridge", Active: "g1", Planned: "g1"}, {Cluster: "gw", Device: "vx-bridge-6", Active: "g2", Planned: "g1"}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var nc v1alpha1.NodeConfig
			nc.Name = "n1"
			nc.Status.Gateways = c.gs
			got := FactsOf([]corev1.Node{n1}, []v1alpha1.NodeConfig{nc}).Nodes[0].GatewaysPlanned
			if len(got) != len(c.want) {
				t.Fatalf("planned %v, want %v", got, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("planned %v, want %v", got, c.want)
				}
			}
		})
	}
}
