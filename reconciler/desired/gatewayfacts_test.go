package desired

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestFactsCarryGatewayEvidence: what an agent's probes find down, whether
// its candidate in use answered, and a split between its families reach
// the facts of its node; an agent of an earlier release (no down, no
// answered) proves as before, and a family split gives no answer but a
// description.
func TestFactsCarryGatewayEvidence(t *testing.T) {
	var n1 corev1.Node
	n1.Name = "n1"
	yes, no := true, false
	for _, c := range []struct {
		name     string
		gs       []v1alpha1.GatewayChoice
		active   map[string]string
		down     map[string][]string
		unproven map[string]bool
		split    map[string]string
	}{
		{"an earlier release", []v1alpha1.GatewayChoice{{Cluster: "gw", Active: "g1"}}, map[string]string{"gw": "g1"}, nil, nil, nil},
		{"answered, g2 down", []v1alpha1.GatewayChoice{{Cluster: "gw", Active: "g1", Answered: &yes, Down: []string{"g2"}}}, map[string]string{"gw": "g1"}, map[string][]string{"gw": {"g2"}}, nil, nil},
		{"not answered yet", []v1alpha1.GatewayChoice{{Cluster: "gw", Active: "g1", Answered: &no}}, map[string]string{"gw": "g1"}, nil, map[string]bool{"gw": true}, nil},
		{"every candidate down", []v1alpha1.GatewayChoice{{Cluster: "gw", Active: "g1", Answered: &yes, Down: []string{"g1", "g2"}}}, map[string]string{"gw": "g1"}, map[string][]string{"gw": {"g1", "g2"}}, map[string]bool{"gw": true}, nil},
		{"families agree, one not answered", []v1alpha1.GatewayChoice{{Cluster: "gw", Device: "vx-bridge", Active: "g1", Answered: &yes}, {Cluster: "gw", Device: "vx-bridge-6", Active: "g1", Answered: &no}}, map[string]string{"gw": "g1"}, nil, map[string]bool{"gw": true}, nil},
		{"families chose differently", []v1alpha1.GatewayChoice{{Cluster: "gw", Device: "vx-bridge-6", Active: "g2", Answered: &yes, Down: []string{"g1"}}, {Cluster: "gw", Device: "vx-bridge", Active: "g1", Answered: &yes}}, nil, nil, nil, map[string]string{"gw": "vx-bridge g1, vx-bridge-6 g2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var nc v1alpha1.NodeConfig
			nc.Name = "n1"
			nc.Status.Gateways = c.gs
			got := FactsOf([]corev1.Node{n1}, []v1alpha1.NodeConfig{nc}).Nodes[0]
			if len(got.Gateways) != len(c.active) || (len(c.active) > 0 && !reflect.DeepEqual(got.Gateways, c.active)) {
				t.Errorf("gateways %v, want %v", got.Gateways, c.active)
			}
			if !reflect.DeepEqual(got.GatewaysDown, c.down) {
				t.Errorf("down %v, want %v", got.GatewaysDown, c.down)
			}
			if !reflect.DeepEqual(got.GatewaysUnproven, c.unproven) {
				t.Errorf("unproven %v, want %v", got.GatewaysUnproven, c.unproven)
			}
			if !reflect.DeepEqual(got.GatewaysSplit, c.split) {
				t.Errorf("split %v, want %v", got.GatewaysSplit, c.split)
			}
		})
	}
}
