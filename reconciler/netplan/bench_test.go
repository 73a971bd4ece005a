package netplan

import (
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
				PodCIDRs:    []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(c), byte(i), 0}), 24)},
			})
		}
		// The gateway in force is observed, as the reconciler reads it back.
		facts[name] = ClusterFacts{Nodes: nodes, Gateway: "n0"}
	}
	v1alpha1.SetDefaults(t)
	return &t.Spec, facts
}

// BenchmarkPlan: the full plan at the sizes the issue names (target ≤ 1 s
// each); entries/plan counts the routes, FDB and neighbour entries produced.
func BenchmarkPlan(b *testing.B) {
	for _, c := range []struct {
		n, m int
		mode v1alpha1.NetworkMode
	}{{50, 100, v1alpha1.ModeGateway}, {10, 100, v1alpha1.ModeP2P}} {
		spec, facts := synthetic(c.n, c.m, c.mode)
		b.Run(fmt.Sprintf("%s-%dx%d", c.mode, c.n, c.m), func(b *testing.B) {
			var entries int
			for b.Loop() {
				p := Compute(spec, facts)
				if len(p.Problems) > 0 {
					b.Fatal(p.Problems)
				}
				entries = 0
				for _, cp := range p.Clusters {
					for _, nc := range cp.Configs {
						entries += len(nc.Spec.Routes) + len(nc.Spec.FDB) + len(nc.Spec.Neighbors)
					}
				}
			}
			b.ReportMetric(float64(entries), "entries/plan")
		})
	}
}

// BenchmarkNodeJoin reports how many NodeConfigs change when one node joins
// (only those that must: the node itself and the nodes that tunnel to it).
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
			b.ReportMetric(float64(n), "configs-changed")
			b.ReportMetric(float64(10*100+1), "configs-total")
		})
	}
}
