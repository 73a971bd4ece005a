package netplan

// A gateway candidate translates its own pods' traffic itself (gateway HA,
// issue 15).
//
// Every candidate holds the cluster's GlobalCIDR mappings (a hot standby),
// but a candidate's own pods send through the candidate the candidate
// chose, and the remote side sends the replies through the one it chose:
// while the two disagree, the NAT binding of a connection from a pod on a
// candidate lived on one candidate and its replies arrived at another,
// which did not know the connection. Now the binding of such a connection
// always lives on the pod's own candidate, whichever way the packets go:
//
//   - the candidate maps its pods' sources to global also when they leave
//     through a sibling over its path device (vx-local is one of its NAT
//     edge devices; only its own traffic leaves there for another cluster,
//     transit never goes to a sibling), and translates destinations that a
//     sibling hands it over that device;
//   - a sibling forwards such already translated sources out its own
//     tunnel as they are (the global ranges are masquerade exceptions);
//   - a reply that reaches a sibling still addressed to the global image of
//     the candidate's pod range is routed to the candidate over the path
//     device (a route per sibling's pod range image), where its conntrack
//     entry translates it back.

import (
	"net/netip"
	"slices"
	"strings"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// podImages returns the global images of node n's pod ranges of family fam
// under the cluster's mappings (ranges no mapping covers have none), sorted.
// It is pure.
func podImages(mappings []v1alpha1.NATMapping, n *Node, fam family) []netip.Prefix {
	var out []netip.Prefix
	for _, pr := range n.PodCIDRs {
		if !fam.matches(pr.Addr()) {
			continue
		}
		for _, m := range mappings {
			rp, err1 := netip.ParsePrefix(m.RealCIDR)
			gp, err2 := netip.ParsePrefix(m.GlobalCIDR)
			if err1 == nil && err2 == nil && rp.Bits() == gp.Bits() && rp.Contains(pr.Addr()) && pr.Bits() >= rp.Bits() {
				out = append(out, mapPrefix(pr.Masked(), rp.Masked(), gp.Masked()))
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return slices.Compact(out)
}

// ownPodsNAT adds to candidate n's spec what keeps its own pods' NAT on
// itself (see above): its path device as a NAT edge device, the global
// ranges as masquerade exceptions of its cross-cluster device, and a route
// per sibling candidate's pod range image over the path device. Only in a
// cluster with mappings and more than one candidate.
func (p *planner) ownPodsNAT(cs *clusterState, fam family, n *Node, spec *v1alpha1.NodeConfigSpec, t *familyTables) {
	if len(cs.mappings) == 0 || len(t.gwLocals) < 2 {
		return
	}
	spec.NAT.EdgeDevices = append(spec.NAT.EdgeDevices, fam.localDev)
	for i := range spec.NAT.Masquerade {
		m := &spec.NAT.Masquerade[i]
		if m.Device != fam.bridgeDev {
			continue
		}
		m.ExceptSources = slices.Clone(m.ExceptSources)
		for _, mp := range cs.mappings {
			if !slices.Contains(m.ExceptSources, mp.GlobalCIDR) {
				m.ExceptSources = append(m.ExceptSources, mp.GlobalCIDR)
			}
		}
	}
	for _, gl := range t.gwLocals {
		if gl.name == n.Name {
			continue
		}
		j := slices.IndexFunc(cs.nodes, func(o Node) bool { return o.Name == gl.name })
		if j < 0 {
			continue
		}
		via := strings.Split(gl.dev.Addresses[0], "/")[0]
		for _, img := range podImages(cs.mappings, &cs.nodes[j], fam) {
			spec.Routes = append(spec.Routes, v1alpha1.Route{Dst: img.String(), Via: via, Device: fam.localDev})
		}
	}
}
