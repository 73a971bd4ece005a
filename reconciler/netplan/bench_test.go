package netplan

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// synthetic builds a topology of n clusters × m nodes in the given mode, with
// distinct pod and service ranges, and its facts.
func synthetic(n, m int, mode v1alpha1.NetworkMode) (*v1alpha1.TopologySpec, Facts) {
	t := &v1alpha1.KosmosTopology{}
	facts := Facts{}
	for c := range n {
		role := v1alpha1.RoleMember
		if c == 0 {
			role = v1alpha1.RoleHost
		}
		name := fmt.Sprintf("c%d", c)
		t.Spec.Clusters = append(t.Spec.Clusters, v1alpha1.ClusterSpec{
			Name: name, Role: role, Kubeconfig: v1alpha1.KubeconfigRef{Context: name},
			Network: v1alpha1.ClusterNetwork{
				Mode:         mode,
				PodCIDRs:     []string{fmt.Sprintf("10.%d.0.0/16", c)},
				ServiceCIDRs: []string{fmt.Sprintf("172.%d.%d.0/24", 16+c/256, c%256)},
			},
		})
		var nodes []Node
		for i := range m {
			nodes = append(nodes, Node{
				Name: fmt.Sprintf("n%d", i), Ready: true,
				InternalIPs: []netip.Addr{netip.AddrFrom4([4]byte{192, byte(c), byte(i / 256), byte(i % 256)})},
				// A /26 each: up to 1,024 distinct ranges per cluster.
				PodCIDRs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(c), byte(i / 4), byte(i % 4 * 64)}), 26)},
			})
		}
		// The gateway in force is observed, as the reconciler reads it back.
		facts[name] = ClusterFacts{Nodes: nodes, Gateway: "n0"}
	}
	v1alpha1.SetDefaults(t)
	return &t.Spec, facts
}

// BenchmarkPlan: the full plan at the sizes the issues name, up to 100
// clusters × 1,000 nodes (target ≤ 1 s each; memory with -benchmem);
// entries/plan counts the routes, FDB and neighbour entries the NodeConfigs
// list, endpoints/plan the endpoints of the shared ClusterPeers.
func BenchmarkPlan(b *testing.B) {
	for _, c := range []struct {
		n, m int
		mode v1alpha1.NetworkMode
	}{{50, 100, v1alpha1.ModeGateway}, {10, 100, v1alpha1.ModeP2P}, {100, 1000, v1alpha1.ModeP2P}, {100, 1000, v1alpha1.ModeGateway}} {
		spec, facts := synthetic(c.n, c.m, c.mode)
		b.Run(fmt.Sprintf("%s-%dx%d", c.mode, c.n, c.m), func(b *testing.B) {
			var entries, endpoints int
			b.ReportAllocs()
			for b.Loop() {
				p := Compute(spec, facts)
				if len(p.Problems) > 0 {
					b.Fatal(p.Problems)
				}
				entries, endpoints = 0, 0
				for _, cp := range p.Clusters {
					for _, nc := range cp.Configs {
						entries += len(nc.Spec.Routes) + len(nc.Spec.FDB) + len(nc.Spec.Neighbors)
					}
					for _, pe := range cp.Peers {
						endpoints += len(pe.Spec.Endpoints)
					}
				}
			}
			b.ReportMetric(float64(c.n), "clusters")
			b.ReportMetric(float64(c.m), "nodes-per-cluster")
			b.ReportMetric(float64(entries), "entries/plan")
			b.ReportMetric(float64(endpoints), "endpoints/plan")
		})
	}
}

// BenchmarkSharedObjectSize: the largest ClusterPeers shard, as JSON, at 10
// clusters × 1,000 nodes in P2P (target ≤ 256 KiB; etcd's limit is 1.5 MiB)
// and the number of shards a cluster is split over.
func BenchmarkSharedObjectSize(b *testing.B) {
	spec, facts := synthetic(10, 1000, v1alpha1.ModeP2P)
	var largest, shards int
	for b.Loop() {
		p := Compute(spec, facts)
		largest, shards = 0, len(p.Clusters[0].Peers)
		for _, cp := range p.Clusters {
			for _, pe := range cp.Peers {
				data, err := json.Marshal(pe)
				if err != nil {
					b.Fatal(err)
				}
				largest = max(largest, len(data))
			}
		}
	}
	if largest > 256<<10 {
		b.Errorf("largest ClusterPeers shard is %d bytes, over 256 KiB", largest)
	}
	b.ReportMetric(10, "clusters")
	b.ReportMetric(1000, "nodes-per-cluster")
	b.ReportMetric(float64(largest), "largest-shard-bytes")
	b.ReportMetric(float64(shards), "shards-per-cluster")
}

// BenchmarkNodeJoin reports how many NodeConfigs and ClusterPeers change
// when one node joins (only those that must: the node itself, and in P2P
// its cluster's shard, held by every other cluster).
func BenchmarkNodeJoin(b *testing.B) {
	for _, mode := range []v1alpha1.NetworkMode{v1alpha1.ModeGateway, v1alpha1.ModeP2P} {
		spec, facts := synthetic(10, 100, mode)
		b.Run(string(mode)+"-10x100", func(b *testing.B) {
			before := Compute(spec, facts)
			more := Facts{}
			for k, v := range facts {
				more[k] = v
			}
			f := facts["c3"]
			more["c3"] = ClusterFacts{Gateway: f.Gateway, Nodes: append(append([]Node(nil), f.Nodes...), Node{
				Name: "joiner", Ready: true, InternalIPs: []netip.Addr{netip.MustParseAddr("192.3.200.1")},
				PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.3.200.0/24")},
			})}
			var n int
			for b.Loop() {
				n = len(changed(before, Compute(spec, more)))
			}
			b.ReportMetric(float64(n), "objects-changed")
			b.ReportMetric(float64(10*100+1), "configs-total")
		})
	}
}
