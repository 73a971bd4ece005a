package desired

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

func TestPickIPAM(t *testing.T) {
	calico := CNIObjects{Calico: true, Blocks: []CalicoBlock{{Node: "n1", CIDR: "10.0.0.0/26", State: "confirmed"}}}
	poolsOnly := CNIObjects{Calico: true, CalicoPools: 1}
	cilium := CNIObjects{Cilium: true, CiliumNodes: []CiliumNode{{Name: "n1", PodCIDRs: []string{"10.0.1.0/24"}}}}
	ciliumEmpty := CNIObjects{Cilium: true, CiliumNodes: []CiliumNode{{Name: "n1"}}}
	for _, c := range []struct {
		want v1alpha1.IPAMSource
		o    CNIObjects
		got  v1alpha1.IPAMSource
	}{
		{"", CNIObjects{}, v1alpha1.IPAMNodeSpec},
		{v1alpha1.IPAMAuto, CNIObjects{Calico: true, Cilium: true}, v1alpha1.IPAMNodeSpec},
		{v1alpha1.IPAMAuto, calico, v1alpha1.IPAMCalico},
		{v1alpha1.IPAMAuto, poolsOnly, v1alpha1.IPAMCalico},
		{v1alpha1.IPAMAuto, cilium, v1alpha1.IPAMCilium},
		{v1alpha1.IPAMAuto, ciliumEmpty, v1alpha1.IPAMNodeSpec},
		{v1alpha1.IPAMNodeSpec, calico, v1alpha1.IPAMNodeSpec},
		{v1alpha1.IPAMCilium, calico, v1alpha1.IPAMCilium},
	} {
		if got := PickIPAM(c.want, c.o); got != c.got {
			t.Errorf("PickIPAM(%q, %+v) = %q, want %q", c.want, c.o, got, c.got)
		}
	}
}

func TestApplyIPAM(t *testing.T) {
	facts := func() netplan.ClusterFacts {
		return netplan.ClusterFacts{Nodes: []netplan.Node{
			{Name: "n1", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/24")}},
			{Name: "n2"},
		}}
	}
	for _, c := range []struct {
		name string
		src  v1alpha1.IPAMSource
		o    CNIObjects
		want string // nodes' PodCIDRs, or the error
	}{
		{"nodespec keeps the specs", v1alpha1.IPAMNodeSpec, CNIObjects{}, "n1 [10.9.0.0/24] n2 []"},
		{"calico confirmed blocks, sorted", v1alpha1.IPAMCalico, CNIObjects{Calico: true, Blocks: []CalicoBlock{
			{Node: "n1", CIDR: "10.0.0.64/26", State: "confirmed"},
			{Node: "n1", CIDR: "10.0.0.0/26", State: "confirmed"},
			{Node: "n1", CIDR: "10.0.0.128/26", State: "pending"},
			{Node: "n2", CIDR: "10.0.1.0/26", State: "confirmed", Deleted: true},
			{Node: "gone", CIDR: "10.0.2.0/26", State: "confirmed"},
		}}, "n1 [10.0.0.0/26 10.0.0.64/26] n2 []"},
		{"cilium", v1alpha1.IPAMCilium, CNIObjects{Cilium: true, CiliumNodes: []CiliumNode{{Name: "n2", PodCIDRs: []string{"10.1.0.0/24", "10.1.1.0/24"}}}}, "n1 [] n2 [10.1.0.0/24 10.1.1.0/24]"},
		{"calico missing", v1alpha1.IPAMCalico, CNIObjects{}, "error: network.ipam is Calico but the cluster has no crd.projectcalico.org/v1 BlockAffinity kind (is Calico installed?)"},
		{"cilium missing", v1alpha1.IPAMCilium, CNIObjects{}, "error: network.ipam is Cilium but the cluster has no cilium.io/v2 CiliumNode kind (is Cilium installed?)"},
		{"bad block", v1alpha1.IPAMCalico, CNIObjects{Calico: true, Blocks: []CalicoBlock{{Node: "n1", CIDR: "nope", State: "confirmed"}}}, `error: Calico pod ranges: Calico block affinity of node n1: "nope" is not a CIDR`},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := facts()
			var got string
			if err := ApplyIPAM(&f, c.src, c.o); err != nil {
				got = "error: " + err.Error()
			} else {
				var parts []string
				for _, n := range f.Nodes {
					parts = append(parts, fmt.Sprintf("%s %v", n.Name, n.PodCIDRs))
				}
				got = strings.Join(parts, " ")
			}
			if got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}
