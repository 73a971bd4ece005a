package preview

import (
	"fmt"
	"net/netip"

	"k8s.io/apimachinery/pkg/runtime"

	"kosmos.io/kosmos/internal/peering"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// PairChange counts the cross-cluster routes added and removed from the
// nodes of one cluster (From) towards the ranges of another (To).
type PairChange struct {
	From, To       string
	Added, Removed int
}

// ownedRange is a range and the cluster it leads to.
type ownedRange struct {
	cluster string
	prefix  netip.Prefix
	global  bool
}

// rangeOwners lists every range the topologies name (the new one first, so
// a cluster that left is still known by the old one): GlobalCIDRs, then
// real pod and service ranges.
func rangeOwners(ts ...*v1alpha1.KosmosTopology) []ownedRange {
	var out []ownedRange
	add := func(cluster, cidr string, global bool) {
		if p, err := netip.ParsePrefix(cidr); err == nil {
			out = append(out, ownedRange{cluster: cluster, prefix: p.Masked(), global: global})
		}
	}
	for _, global := range []bool{true, false} {
		for _, t := range ts {
			if t == nil {
				continue
			}
			for _, c := range t.Spec.Clusters {
				if global {
					for _, g := range sortedKeys(c.Network.GlobalCIDRs) {
						add(c.Name, c.Network.GlobalCIDRs[g], true)
					}
					continue
				}
				for _, r := range append(append([]string{}, c.Network.PodCIDRs...), c.Network.ServiceCIDRs...) {
					add(c.Name, r, false)
				}
			}
		}
	}
	return out
}

// objectRanges learns ranges from the clusters' NodeConfigs, for clusters
// no topology at hand names (a live diff knows only the new topology, and a
// cluster that left is only in its live objects): spec.localCIDRs are the
// cluster's real ranges, spec.nat.mappings its GlobalCIDRs. Like
// clusterRoutes, it reads the NodeConfig contract and moves with it.
func objectRanges(rep reconciler.DiffReport) []ownedRange {
	var global, real []ownedRange
	for _, d := range rep.Clusters {
		for _, objs := range []reconciler.Objects{d.Before, d.After} {
			for _, o := range objs {
				if o["kind"] != v1alpha1.KindNodeConfig {
					continue
				}
				spec, _ := o["spec"].(map[string]any)
				local, _ := spec["localCIDRs"].([]any)
				for _, c := range local {
					if p, err := netip.ParsePrefix(fmt.Sprint(c)); err == nil {
						real = append(real, ownedRange{cluster: d.Cluster, prefix: p.Masked()})
					}
				}
				nat, _ := spec["nat"].(map[string]any)
				maps, _ := nat["mappings"].([]any)
				for _, m := range maps {
					mm, _ := m.(map[string]any)
					if p, err := netip.ParsePrefix(fmt.Sprint(mm["globalCIDR"])); err == nil {
						global = append(global, ownedRange{cluster: d.Cluster, prefix: p.Masked(), global: true})
					}
				}
			}
		}
	}
	return append(global, real...)
}

// ownerOf names the cluster a route from cluster `from` to dst leads to: a
// GlobalCIDR holding dst first (mapped ranges are reached by their global
// addresses), else a real range of another cluster; "" when none does.
func ownerOf(ranges []ownedRange, from, dst string) string {
	p, err := netip.ParsePrefix(dst)
	if err != nil {
		return ""
	}
	for _, r := range ranges {
		if r.cluster == from && !r.global {
			continue
		}
		if r.prefix.Bits() <= p.Bits() && r.prefix.Contains(p.Addr()) {
			return r.cluster
		}
	}
	return ""
}

// clusterRoutes reads the cross-cluster routes one state of a cluster holds,
// as a set of route identities (node, destination, next hop, device) by the
// cluster each leads to ("?" when no range of the topologies holds it).
//
// A node's routes are what its agent derives (peering.Derive) from its
// NodeConfig and the ClusterPeers of the other clusters held in the same
// cluster; a NodeConfig of the complete, earlier contract holds them
// itself. This function is the one place that reads them.
func clusterRoutes(objs reconciler.Objects, from string, ranges []ownedRange) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for node, routes := range nodeRoutes(objs) {
		for _, r := range routes {
			to := ownerOf(ranges, from, r.Dst)
			if to == "" {
				to = "?"
			}
			if out[to] == nil {
				out[to] = map[string]bool{}
			}
			out[to][fmt.Sprintf("%s %s via %s dev %s", node, r.Dst, r.Via, r.Device)] = true
		}
	}
	return out
}

// nodeRoutes are the routes of each node of one cluster's objects, as its
// agent derives them; a NodeConfig that cannot be read or derived counts
// with the routes it holds itself.
func nodeRoutes(objs reconciler.Objects) map[string][]v1alpha1.Route {
	var peers []v1alpha1.ClusterPeers
	var configs []v1alpha1.NodeConfig
	for _, o := range objs {
		switch o["kind"] {
		case v1alpha1.KindClusterPeers:
			var cp v1alpha1.ClusterPeers
			if runtime.DefaultUnstructuredConverter.FromUnstructured(o, &cp) == nil {
				peers = append(peers, cp)
			}
		case v1alpha1.KindNodeConfig:
			var nc v1alpha1.NodeConfig
			if runtime.DefaultUnstructuredConverter.FromUnstructured(o, &nc) == nil {
				configs = append(configs, nc)
			}
		}
	}
	out := map[string][]v1alpha1.Route{}
	for _, nc := range configs {
		out[nc.Name] = nc.Spec.Routes
		if full, err := peering.Derive(&nc.Spec, peering.Select(&nc.Spec, peers)); err == nil {
			out[nc.Name] = full.Routes
		}
	}
	return out
}

// RouteChanges counts, per cluster pair, the routes the diff adds and
// removes, in the order of the report's clusters, then by destination.
// old may be nil (a live diff): the new topology and the NodeConfigs of the
// report then name the ranges.
func RouteChanges(rep reconciler.DiffReport, old, t *v1alpha1.KosmosTopology) []PairChange {
	ranges := append(rangeOwners(t, old), objectRanges(rep)...)
	var out []PairChange
	for _, d := range rep.Clusters {
		before := clusterRoutes(d.Before, d.Cluster, ranges)
		after := clusterRoutes(d.After, d.Cluster, ranges)
		dests := map[string]bool{}
		for to := range before {
			dests[to] = true
		}
		for to := range after {
			dests[to] = true
		}
		for _, to := range sortedKeys(dests) {
			pc := PairChange{From: d.Cluster, To: to, Added: missing(after[to], before[to]), Removed: missing(before[to], after[to])}
			if pc.Added+pc.Removed > 0 {
				out = append(out, pc)
			}
		}
	}
	return out
}

// missing counts the entries of a that b lacks.
func missing(a, b map[string]bool) int {
	n := 0
	for k := range a {
		if !b[k] {
			n++
		}
	}
	return n
}
