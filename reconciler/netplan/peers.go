package netplan

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math/bits"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/internal/peering"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// The shared part of the plan. What every node of a cluster needs of a
// remote cluster is the same for all of them, so it is planned once per
// cluster as ClusterPeers objects, which the reconciler writes into every
// other cluster. A cluster with more endpoints than PeersShardSize is split
// over a power of two of shards, each endpoint placed by a hash of its name:
// a node joining changes one shard per peer cluster (only when the count
// crosses a power of two is the cluster split anew, once). Each shard
// repeats the cluster's mode, CIDRs and gateway order, which are small.

// ShardCount is the number of ClusterPeers shards a cluster of n endpoints
// is split over: 1 up to PeersShardSize, then the smallest power of two that
// keeps the average at or below it.
func ShardCount(n int) int {
	if n <= v1alpha1.PeersShardSize {
		return 1
	}
	need := (n + v1alpha1.PeersShardSize - 1) / v1alpha1.PeersShardSize
	return 1 << bits.Len(uint(need-1))
}

// shardOf places an endpoint name in one of shards (a power of two).
func shardOf(name string, shards int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return int(h.Sum32() & uint32(shards-1))
}

// PeersName is the name of shard i of n of a cluster's ClusterPeers.
func PeersName(cluster string, i, n int) string {
	return fmt.Sprintf("%s.%d-of-%d", cluster, i, n)
}

// peersOf renders the cluster's ClusterPeers shards, sorted by shard.
func peersOf(cs *clusterState) []v1alpha1.ClusterPeers {
	names := slices.Sorted(maps.Keys(cs.endpoints))
	n := ShardCount(len(names))
	out := make([]v1alpha1.ClusterPeers, n)
	for i := range out {
		out[i] = v1alpha1.ClusterPeers{
			TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindClusterPeers},
			Spec: v1alpha1.ClusterPeersSpec{
				Cluster: cs.spec.Name, Mode: cs.spec.Network.Mode, Shard: int32(i), Shards: int32(n),
				CIDRs: cs.cidrs, Gateways: gatewaysOf(cs), Encryption: encryptionOf(cs),
			},
		}
		out[i].Name = PeersName(cs.spec.Name, i, n)
	}
	for _, name := range names {
		s := &out[shardOf(name, n)].Spec
		s.Endpoints = append(s.Endpoints, *cs.endpoints[name])
	}
	return out
}

// gatewaysOf is the ordered candidate list of a Gateway cluster: the
// elected gateway, then the standbys.
func gatewaysOf(cs *clusterState) []string {
	if cs.gateway == "" {
		return nil
	}
	return slices.Concat([]string{cs.gateway}, cs.standby)
}

// expandLegacy completes the NodeConfigs of nodes whose agent is of an
// earlier release (Node.LegacyAgent): such an agent reads only its
// NodeConfig, so every entry the ClusterPeers imply is written into it, by
// the same derivation the agents run, but with no entry to an endpoint of
// an encrypted pair: such an agent has no WireGuard and would send to it in
// clear (fail closed; the plan names the node, see wireGuardDevice).
// spec.peers stays, so an upgraded agent derives the complete state, its
// encrypted peers included, from the shared objects.
func (p *planner) expandLegacy(out *Plan, clusters []*clusterState) {
	all := out.AllPeers()
	for ci, cs := range clusters {
		cp := &out.Clusters[ci]
		for i, n := range cs.nodes {
			nc := &cp.Configs[i]
			if !n.LegacyAgent || nc.Spec.Peers == nil {
				continue
			}
			full, err := peering.DeriveWithoutWireGuard(&nc.Spec, peering.Select(&nc.Spec, all))
			if err != nil {
				out.Problems = append(out.Problems, fmt.Sprintf("cluster %s: node %s: %v", cs.spec.Name, n.Name, err))
				continue
			}
			nc.Spec = full
		}
	}
}

// AllPeers returns every cluster's ClusterPeers shards.
func (p *Plan) AllPeers() []v1alpha1.ClusterPeers {
	var all []v1alpha1.ClusterPeers
	for _, cp := range p.Clusters {
		all = append(all, cp.Peers...)
	}
	return all
}

// Derived returns the complete configs of a cluster's nodes, as their
// agents derive them from their NodeConfigs and the other clusters'
// ClusterPeers (see package peering): what each kernel holds.
func (p *Plan) Derived(cluster string) ([]v1alpha1.NodeConfig, error) {
	cp := p.Cluster(cluster)
	if cp == nil {
		return nil, nil
	}
	all := p.AllPeers()
	out := make([]v1alpha1.NodeConfig, len(cp.Configs))
	for i, nc := range cp.Configs {
		full, err := peering.Derive(&nc.Spec, peering.Select(&nc.Spec, all))
		if err != nil {
			return nil, fmt.Errorf("cluster %s: node %s: %w", cluster, nc.Name, err)
		}
		out[i] = nc
		out[i].Spec = full
	}
	return out, nil
}
