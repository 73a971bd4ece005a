package desired

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestFactsWireGuardKey: the key an agent published in its NodeConfig
// status becomes its node's fact; a malformed one is ignored (the node
// counts as keyless: encrypted peers do not reach it).
func TestFactsWireGuardKey(t *testing.T) {
	const key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="
	nodes := []corev1.Node{{}, {}, {}}
	nodes[0].Name, nodes[1].Name, nodes[2].Name = "a", "b", "c"
	configs := []v1alpha1.NodeConfig{{}, {}}
	configs[0].Name, configs[0].Status.WireGuard = "a", &v1alpha1.WireGuardStatus{PublicKey: key}
	configs[1].Name, configs[1].Status.WireGuard = "b", &v1alpha1.WireGuardStatus{PublicKey: "short"}
	f := FactsOf(nodes, configs)
	got := map[string]string{}
	for _, n := range f.Nodes {
		got[n.Name] = n.WireGuardKey
	}
	if got["a"] != key || got["b"] != "" || got["c"] != "" {
		t.Errorf("keys %v", got)
	}
}
