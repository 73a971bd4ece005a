package sandbox

import (
	"net/netip"
	"path/filepath"
	"testing"

	"kosmos.io/kosmos/schema"
)

func TestSubnet(t *testing.T) {
	for _, tc := range []struct {
		p    string
		bits int
		k    int
		want string
	}{
		{"10.244.0.0/16", 24, 1, "10.244.1.0/24"},
		{"10.244.0.0/16", 24, 255, "10.244.255.0/24"},
		{"10.30.0.0/24", 24, 3, "10.30.0.0/24"},
		{"fd00:30::/56", 64, 2, "fd00:30:0:2::/64"},
	} {
		if got := subnet(netip.MustParsePrefix(tc.p), tc.bits, tc.k).String(); got != tc.want {
			t.Errorf("subnet(%s, %d, %d) = %s, want %s", tc.p, tc.bits, tc.k, got, tc.want)
		}
	}
}

// TestNodesForExample: the example topology's machines, two per cluster,
// with the dual-stack member getting an address and pod CIDR per family.
func TestNodesForExample(t *testing.T) {
	top, err := schema.LoadFile(filepath.Join("..", "..", "topology.example.yaml"))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	nodes, err := NodesFor(top, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 4 || len(nodes["member-a"]) != 2 {
		t.Fatalf("nodes per cluster: %d clusters", len(nodes))
	}
	a2 := nodes["member-a"][1]
	if a2.Name != "member-a-n2" || a2.Spec.PodCIDR != "10.244.2.0/24" || a2.Status.Addresses[0].Address != "192.168.2.12" || a2.Labels["topology.kubernetes.io/region"] != "eu-west" {
		t.Errorf("member-a-n2: %+v %+v %v", a2.Spec, a2.Status.Addresses, a2.Labels)
	}
	c1 := nodes["member-c"][0]
	if len(c1.Spec.PodCIDRs) != 2 || c1.Spec.PodCIDRs[1] != "fd00:30:0:1::/64" || len(c1.Status.Addresses) != 2 || c1.Status.Addresses[1].Address != "fd00:4::11" {
		t.Errorf("member-c-n1 (dual-stack): %v %+v", c1.Spec.PodCIDRs, c1.Status.Addresses)
	}
}
