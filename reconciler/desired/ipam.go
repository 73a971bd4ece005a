package desired

// Pod ranges from the CNI, and the Calico IPPools Kosmos keeps.
//
// ClusterLink's P2P mode routes each remote node's pod ranges to that node.
// Node.spec.podCIDRs holds them only for host-local IPAM (the controller
// manager's --allocate-node-cidrs, flannel, Cilium in Kubernetes IPAM
// mode). Calico hands out /26 blocks per node as nodes fill up and records
// them as BlockAffinity objects; Cilium's cluster-pool IPAM records them in
// CiliumNode spec.ipam.podCIDRs. The reconciler reads those objects as
// unstructured data (no dependency on the CNIs' Go modules) into
// CNIObjects; the functions here pick the source (network.ipam, Auto by
// default) and turn it into the nodes' PodCIDRs.
//
// Calico masquerades traffic from its pools to anything outside all its
// pools (natOutgoing). Upstream Kosmos, and Kosmos here, keep a disabled
// IPPool per remote range (nodeSelector !all(), so nothing is allocated
// from it): Calico then counts the remote ranges as its own and leaves
// traffic to them alone. The pools carry the ownership labels, so prune
// deletes only Kosmos's own.

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// The CNI kinds read (and, for IPPools, written).
const (
	CalicoAPIVersion  = "crd.projectcalico.org/v1"
	KindBlockAffinity = "BlockAffinity"
	KindIPPool        = "IPPool"
	CiliumAPIVersion  = "cilium.io/v2"
	KindCiliumNode    = "CiliumNode"
)

// CNIObjects are what a cluster's CNI records of its pod ranges, as read.
type CNIObjects struct {
	// Calico and Cilium say the CRDs are installed (their kinds exist).
	Calico, Cilium bool
	// CalicoPools counts the IPPools that are not Kosmos's own.
	CalicoPools int
	// Blocks are Calico's BlockAffinities.
	Blocks []CalicoBlock
	// CiliumNodes are Cilium's per-node records.
	CiliumNodes []CiliumNode
}

// CalicoBlock is one BlockAffinity: a block of addresses affine to a node.
type CalicoBlock struct {
	Node, CIDR string
	// State is confirmed once the block is the node's; pending and
	// pendingDeletion blocks are not routed.
	State string
	// Deleted is the affinity's spec.deleted ("true" when being deleted).
	Deleted bool
}

// CiliumNode is one CiliumNode's name and spec.ipam.podCIDRs.
type CiliumNode struct {
	Name     string
	PodCIDRs []string
}

// PickIPAM returns the source of a cluster's pod ranges: want, unless it is
// Auto (or unset), then Calico when the cluster holds BlockAffinities or
// IPPools of its own, else Cilium when a CiliumNode has pod ranges, else
// NodeSpec. It is pure.
func PickIPAM(want v1alpha1.IPAMSource, o CNIObjects) v1alpha1.IPAMSource {
	if want != "" && want != v1alpha1.IPAMAuto {
		return want
	}
	if len(o.Blocks) > 0 || o.CalicoPools > 0 {
		return v1alpha1.IPAMCalico
	}
	for _, n := range o.CiliumNodes {
		if len(n.PodCIDRs) > 0 {
			return v1alpha1.IPAMCilium
		}
	}
	return v1alpha1.IPAMNodeSpec
}

// ApplyIPAM sets the nodes' PodCIDRs from the source picked (PickIPAM) and
// records the source in f.IPAM (empty for NodeSpec). NodeSpec leaves the ranges FactsOf read.
// A Calico node gets its confirmed blocks, a Cilium node its CiliumNode's
// ranges, in address order; a node without any gets none. An unparsable
// range is an error naming its object. It is pure apart from writing f.
func ApplyIPAM(f *netplan.ClusterFacts, src v1alpha1.IPAMSource, o CNIObjects) error {
	f.IPAM = src
	if src == v1alpha1.IPAMNodeSpec {
		f.IPAM = "" // as facts of earlier releases read: no rewrite of the persisted facts
	}
	var byNode map[string][]netip.Prefix
	var errs []string
	add := func(node, what, cidr string) {
		pr, err := netip.ParsePrefix(cidr)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s of node %s: %q is not a CIDR", what, node, cidr))
			return
		}
		byNode[node] = append(byNode[node], pr.Masked())
	}
	switch src {
	case v1alpha1.IPAMCalico:
		if !o.Calico {
			return fmt.Errorf("network.ipam is Calico but the cluster has no %s %s kind (is Calico installed?)", CalicoAPIVersion, KindBlockAffinity)
		}
		byNode = map[string][]netip.Prefix{}
		for _, b := range o.Blocks {
			if b.State == "confirmed" && !b.Deleted {
				add(b.Node, "Calico block affinity", b.CIDR)
			}
		}
	case v1alpha1.IPAMCilium:
		if !o.Cilium {
			return fmt.Errorf("network.ipam is Cilium but the cluster has no %s %s kind (is Cilium installed?)", CiliumAPIVersion, KindCiliumNode)
		}
		byNode = map[string][]netip.Prefix{}
		for _, n := range o.CiliumNodes {
			for _, c := range n.PodCIDRs {
				add(n.Name, "CiliumNode spec.ipam.podCIDRs", c)
			}
		}
	default:
		return nil
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s pod ranges: %s", src, strings.Join(errs, "; "))
	}
	for i := range f.Nodes {
		prs := byNode[f.Nodes[i].Name]
		slices.SortFunc(prs, func(a, b netip.Prefix) int {
			if c := a.Addr().Compare(b.Addr()); c != 0 {
				return c
			}
			return a.Bits() - b.Bits()
		})
		f.Nodes[i].PodCIDRs = slices.Compact(prs)
	}
	return nil
}

// IPPoolName is the name of the disabled IPPool Kosmos keeps for a remote
// cluster's range: kosmos-<cluster>-<cidr with '.', ':' and '/' as '-'>.
func IPPoolName(cluster, cidr string) string {
	return "kosmos-" + cluster + "-" + strings.NewReplacer(".", "-", ":", "-", "/", "-").Replace(cidr)
}

// calicoPools are the disabled IPPools of a Calico cluster: one for every
// range (pod and service, global where mapped) of every other planned
// cluster, as its ClusterPeers name them.
func calicoPools(cluster string, plan *netplan.Plan, meta func(string) map[string]string) []client.Object {
	var out []client.Object
	seen := map[string]bool{}
	for _, cp := range plan.Clusters {
		if cp.Name == cluster || len(cp.Peers) == 0 {
			continue
		}
		for _, cidr := range cp.Peers[0].Spec.CIDRs {
			name := IPPoolName(cp.Name, cidr)
			if seen[name] {
				continue
			}
			seen[name] = true
			u := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": CalicoAPIVersion,
				"kind":       KindIPPool,
				"metadata":   map[string]any{"name": name, "labels": toAny(meta(name))},
				"spec": map[string]any{
					"cidr":         cidr,
					"disabled":     true,
					"natOutgoing":  false,
					"ipipMode":     "Never",
					"vxlanMode":    "Never",
					"nodeSelector": "!all()",
				},
			}}
			out = append(out, u)
		}
	}
	return out
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
