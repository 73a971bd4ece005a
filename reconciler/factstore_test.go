package reconciler

import (
	"encoding/json"
	"maps"
	"net/netip"
	"testing"
	"time"

	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestPersistedFactsRoundTrip: facts read back from the record encode to
// the very same data, so an unchanged fleet never rewrites it; labels no
// gateway selector reads are not kept.
func TestPersistedFactsRoundTrip(t *testing.T) {
	topo := &v1alpha1.KosmosTopology{Spec: v1alpha1.TopologySpec{Clusters: []v1alpha1.ClusterSpec{
		{Name: "b", Network: v1alpha1.ClusterNetwork{Gateway: v1alpha1.GatewaySpec{NodeSelector: map[string]string{"gw": "yes"}}}},
	}}}
	f := netplan.ClusterFacts{Gateway: "n1", Nodes: []netplan.Node{{
		Name: "n1", InternalIPs: []netip.Addr{netip.MustParseAddr("192.168.3.11")}, PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.1.0/24")},
		Ready: true, ReadySince: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Labels: map[string]string{"gw": "yes", "kubernetes.io/hostname": "n1"},
		Gateways: map[string]string{"c": "c2"}, GatewaysSince: map[string]time.Time{"c": time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)},
	}}}
	trimmed := trimFacts(topo, f)
	if n := trimmed.Nodes[0]; n.Gateways["c"] != "c2" || n.GatewaysSince["c"].IsZero() {
		t.Errorf("gateway choice not kept: %v since %v", n.Gateways, n.GatewaysSince)
	}
	if l := trimmed.Nodes[0].Labels; len(l) != 1 || l["gw"] != "yes" {
		t.Errorf("labels kept: %v", l)
	}
	data, err := encodeFacts(persistedFacts{"b": trimmed})
	if err != nil {
		t.Fatal(err)
	}
	var back netplan.ClusterFacts
	if err := json.Unmarshal([]byte(data["b"]), &back); err != nil {
		t.Fatal(err)
	}
	again, err := encodeFacts(persistedFacts{"b": trimFacts(topo, back)})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(data, again) {
		t.Errorf("the record does not round-trip:\n%s\n%s", data["b"], again["b"])
	}
}
