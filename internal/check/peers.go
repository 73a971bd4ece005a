package check

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/peering"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// PeersShard is one ClusterPeers object found in a cluster.
type PeersShard struct {
	Name, Cluster string
	Shard, Shards int32
	Generation    int64
}

// AgentPeers is what one NodeConfig of the shared contract says of the
// ClusterPeers its agent applied.
type AgentPeers struct {
	Node string
	// Peering is the NodeConfig's spec.peers (which objects it reads).
	Peering *v1alpha1.PeeringSpec
	// Applied: the agent reported condition Applied True; Shared: it
	// speaks the shared contract (status.contract); Peers: status.peers.
	Applied, Shared bool
	Peers           []v1alpha1.AppliedPeers
}

// collectPeers reads the ClusterPeers of topology in a cluster and what the
// agents of its NodeConfigs with spec.peers report having applied.
func collectPeers(ctx context.Context, c client.Client, topology string, ncs []v1alpha1.NodeConfig, cr *ClusterReport) error {
	var list v1alpha1.ClusterPeersList
	if err := c.List(ctx, &list, client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelTopology: topology}); err != nil {
		if meta.IsNoMatchError(err) {
			return nil // a release before the shared contract: nothing to judge
		}
		return fmt.Errorf("list ClusterPeers: %w", err)
	}
	for _, p := range list.Items {
		cr.PeersShards = append(cr.PeersShards, PeersShard{Name: p.Name, Cluster: p.Spec.Cluster, Shard: p.Spec.Shard, Shards: p.Spec.Shards, Generation: p.Generation})
	}
	for _, nc := range ncs {
		if nc.Spec.Peers == nil {
			continue
		}
		cr.Agents = append(cr.Agents, AgentPeers{Node: nc.Name, Peering: nc.Spec.Peers,
			Applied: meta.IsStatusConditionTrue(nc.Status.Conditions, "Applied"),
			Shared:  nc.Status.Contract == v1alpha1.ContractShared, Peers: nc.Status.Peers})
	}
	return nil
}

// peersChecks judges the shared contract in one cluster c:
//
//   - "ClusterPeers": c holds a complete shard set (<cluster>.<i>-of-<n>,
//     every i of one n) of every other cluster of the topology;
//   - "ClusterPeers applied": every agent of the shared contract reported,
//     in status.peers, exactly the shards it derives from now, each at its
//     current generation (its kernel matches them). Agents of the earlier
//     contract, which get complete NodeConfigs, are counted apart. Without
//     agents expected and none reporting, SKIP.
func peersChecks(t *v1alpha1.KosmosTopology, c ClusterReport, agents bool) []Check {
	var out []Check
	by := map[string][]v1alpha1.ClusterPeers{}
	all := make([]v1alpha1.ClusterPeers, 0, len(c.PeersShards))
	for _, s := range c.PeersShards {
		p := v1alpha1.ClusterPeers{Spec: v1alpha1.ClusterPeersSpec{Cluster: s.Cluster, Shard: s.Shard, Shards: s.Shards}}
		p.Name, p.Generation = s.Name, s.Generation
		p.Labels = map[string]string{v1alpha1.LabelTopology: t.Name}
		by[s.Cluster] = append(by[s.Cluster], p)
		all = append(all, p)
	}
	var missing []string
	others := 0
	for _, o := range t.Spec.Clusters {
		if o.Name == c.Name {
			continue
		}
		others++
		if use, _ := peering.Settle(nil, by[o.Name]); !completeSet(use) {
			have := make([]string, 0, len(by[o.Name]))
			for _, p := range by[o.Name] {
				have = append(have, p.Name)
			}
			missing = append(missing, fmt.Sprintf("%s (has %s)", o.Name, dash(strings.Join(have, ","))))
		}
	}
	name := "cluster " + c.Name + " ClusterPeers"
	if len(missing) > 0 {
		out = append(out, Check{name, "FAIL", fmt.Sprintf("no complete shard set of %s", strings.Join(missing, "; "))})
	} else {
		out = append(out, Check{name, "PASS", fmt.Sprintf("complete shard sets of all %d other clusters (%d objects)", others, len(all))})
	}

	name = "cluster " + c.Name + " ClusterPeers applied"
	var current, legacy, silent int
	var behind []string
	for _, a := range c.Agents {
		switch {
		case !a.Applied:
			silent++
			continue
		case !a.Shared:
			legacy++
			continue
		}
		used, _ := peering.Settle(nil, peering.Select(&v1alpha1.NodeConfigSpec{Peers: a.Peering}, all))
		want := make([]v1alpha1.AppliedPeers, 0, len(used))
		for _, p := range used {
			want = append(want, v1alpha1.AppliedPeers{Name: p.Name, Generation: p.Generation})
		}
		got := slices.Clone(a.Peers)
		slices.SortFunc(got, func(x, y v1alpha1.AppliedPeers) int { return strings.Compare(x.Name, y.Name) })
		if slices.Equal(got, want) {
			current++
		} else {
			behind = append(behind, a.Node)
		}
	}
	detail := fmt.Sprintf("%d of %d agents applied the current generations", current, len(c.Agents))
	if legacy > 0 {
		detail += fmt.Sprintf("; %d of the earlier contract (complete NodeConfigs)", legacy)
	}
	if silent > 0 {
		detail += fmt.Sprintf("; %d not reported", silent)
	}
	if len(behind) > 0 {
		if len(behind) > 5 {
			behind = append(behind[:5], "…")
		}
		detail += "; behind: " + strings.Join(behind, ",")
	}
	switch {
	case len(c.Agents) == 0:
		out = append(out, Check{name, "SKIP", "no NodeConfig of the shared contract"})
	case current+legacy == 0 && !agents:
		out = append(out, Check{name, "SKIP", "no node agent has reported (no data plane: kosmos up --dataplane)"})
	case len(behind) == 0 && silent == 0:
		out = append(out, Check{name, "PASS", detail})
	default:
		out = append(out, Check{name, "FAIL", detail})
	}
	return out
}

// completeSet says the shards Settle chose form one complete set.
func completeSet(use []v1alpha1.ClusterPeers) bool {
	if len(use) == 0 {
		return false
	}
	n := use[0].Spec.Shards
	seen := map[int32]bool{}
	for _, p := range use {
		if p.Spec.Shards != n || p.Spec.Shard < 0 || p.Spec.Shard >= n {
			return false
		}
		seen[p.Spec.Shard] = true
	}
	return int32(len(seen)) == n
}
