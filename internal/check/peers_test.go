package check

import (
	"fmt"
	"strings"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

func TestPeersChecks(t *testing.T) {
	topo := &v1alpha1.KosmosTopology{}
	topo.Name = "t"
	for _, n := range []string{"a", "b", "c"} {
		topo.Spec.Clusters = append(topo.Spec.Clusters, v1alpha1.ClusterSpec{Name: n})
	}
	shard := func(cluster string, i, n int32, gen int64) PeersShard {
		return PeersShard{Name: fmt.Sprintf("%s.%d-of-%d", cluster, i, n), Cluster: cluster, Shard: i, Shards: n, Generation: gen}
	}
	complete := []PeersShard{shard("b", 0, 1, 3), shard("c", 0, 2, 1), shard("c", 1, 2, 4)}
	peering := &v1alpha1.PeeringSpec{Cluster: "a", Topology: "t"}
	current := []v1alpha1.AppliedPeers{{Name: "b.0-of-1", Generation: 3}, {Name: "c.0-of-2", Generation: 1}, {Name: "c.1-of-2", Generation: 4}}
	agent := func(node string, applied, shared bool, peers []v1alpha1.AppliedPeers) AgentPeers {
		return AgentPeers{Node: node, Peering: peering, Applied: applied, Shared: shared, Peers: peers}
	}
	old := []v1alpha1.AppliedPeers{{Name: "b.0-of-1", Generation: 2}, {Name: "c.0-of-2", Generation: 1}, {Name: "c.1-of-2", Generation: 4}}
	for _, c := range []struct {
		name   string
		shards []PeersShard
		agents []AgentPeers
		noData bool
		want   string // result of the two rows, then their details
	}{
		{"all complete, all current", complete, []AgentPeers{agent("a1", true, true, current), agent("a2", true, true, current)}, false,
			"PASS PASS | complete shard sets of all 2 other clusters (3 objects) | 2 of 2 agents applied the current generations"},
		{"a shard missing", complete[:2], []AgentPeers{agent("a1", true, true, current)}, false,
			"FAIL FAIL | no complete shard set of c (has c.0-of-2) | 0 of 1 agents applied the current generations; behind: a1"},
		{"a cluster missing", complete[1:], nil, false,
			"FAIL SKIP | no complete shard set of b (has -) | no NodeConfig of the shared contract"},
		{"a re-split under way: the old set complete", append([]PeersShard{shard("b", 0, 2, 1)}, complete...), []AgentPeers{agent("a1", true, true, current)}, false,
			"PASS PASS | complete shard sets of all 2 other clusters (4 objects) | 1 of 1 agents applied the current generations"},
		{"an agent behind a generation", complete, []AgentPeers{agent("a1", true, true, current), agent("a2", true, true, old)}, false,
			"PASS FAIL | complete shard sets of all 2 other clusters (3 objects) | 1 of 2 agents applied the current generations; behind: a2"},
		{"an agent of the earlier contract, one not reported", complete, []AgentPeers{agent("a1", true, true, current), agent("a2", true, false, nil), agent("a3", false, false, nil)}, false,
			"PASS FAIL | complete shard sets of all 2 other clusters (3 objects) | 1 of 3 agents applied the current generations; 1 of the earlier contract (complete NodeConfigs); 1 not reported"},
		{"earlier contract only", complete, []AgentPeers{agent("a2", true, false, nil)}, false,
			"PASS PASS | complete shard sets of all 2 other clusters (3 objects) | 0 of 1 agents applied the current generations; 1 of the earlier contract (complete NodeConfigs)"},
		{"no data plane, no agent", complete, []AgentPeers{agent("a1", false, false, nil)}, true,
			"PASS SKIP | complete shard sets of all 2 other clusters (3 objects) | no node agent has reported (no data plane: kosmos up --dataplane)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows := peersChecks(topo, ClusterReport{Name: "a", PeersShards: c.shards, Agents: c.agents}, !c.noData)
			if len(rows) != 2 || rows[0].Name != "cluster a ClusterPeers" || rows[1].Name != "cluster a ClusterPeers applied" {
				t.Fatalf("rows: %+v", rows)
			}
			got := strings.Join([]string{rows[0].Result + " " + rows[1].Result, rows[0].Detail, rows[1].Detail}, " | ")
			if got != c.want {
				t.Errorf("\n got %s\nwant %s", got, c.want)
			}
		})
	}
}
