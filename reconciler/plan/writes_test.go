package plan_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"kosmos.io/kosmos/reconciler/apply"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/reconciler/plan"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// fleet is a topology of n clusters in one mode, and facts of m nodes in
// each (legacy: every agent is of the earlier contract).
func fleet(t testing.TB, n, m int, mode string, legacy bool) (*v1alpha1.KosmosTopology, plan.Facts) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: kosmos.io/v1alpha1\nkind: KosmosTopology\nmetadata: {name: fleet}\nspec:\n  clusters:\n")
	facts := plan.Facts{}
	for c := range n {
		role := "member"
		if c == 0 {
			role = "host"
		}
		name := fmt.Sprintf("c%d", c)
		fmt.Fprintf(&b, "    - {name: %s, role: %s, kubeconfig: {context: %s}, network: {mode: %s, podCIDRs: [10.%d.0.0/16], serviceCIDRs: [172.%d.0.0/16]}}\n", name, role, name, mode, c, 16+c)
		var f plan.ClusterFacts
		for i := range m {
			f.Nodes = append(f.Nodes, fleetNode(c, i, legacy))
		}
		f.Gateway = "n000"
		facts[name] = f
	}
	topo, err := schema.Load("fleet.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return topo, facts
}

func fleetNode(c, i int, legacy bool) netplan.Node {
	return netplan.Node{
		Name: fmt.Sprintf("n%03d", i), Ready: true, LegacyAgent: legacy,
		InternalIPs: []netip.Addr{netip.AddrFrom4([4]byte{192, byte(c), byte(i / 250), byte(i%250 + 1)})},
		PodCIDRs:    []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(c), byte(i), 0}), 24)},
	}
}

// writes counts, by cluster, the writes the apply layer makes to go from
// plan a (as live) to plan b: objects created, objects whose applied form
// (apply.Desired) the live one does not hold (apply.Subset), objects pruned;
// and the bytes of the objects written.
func writes(t testing.TB, a, b plan.Plan) (n int, bytes int, what []string) {
	t.Helper()
	for _, cb := range b.Clusters {
		live := map[string]map[string]any{}
		if ca := a.Cluster(cb.Name); ca != nil {
			for _, o := range ca.Objects {
				u, err := apply.Desired(o)
				if err != nil {
					t.Fatal(err)
				}
				live[apply.KeyOf(o)] = u.Object
			}
		}
		for _, o := range cb.Objects {
			u, err := apply.Desired(o)
			if err != nil {
				t.Fatal(err)
			}
			key := apply.KeyOf(o)
			have, ok := live[key]
			delete(live, key)
			if ok && apply.Subset(u.Object, have) {
				continue
			}
			data, _ := u.MarshalJSON()
			n, bytes, what = n+1, bytes+len(data), append(what, cb.Name+" "+key)
		}
		for key := range live {
			if !strings.HasPrefix(key, "Namespace/") {
				n, what = n+1, append(what, cb.Name+" prune "+key)
			}
		}
	}
	return n, bytes, what
}

// TestNodeJoinWritesPerCluster: at 10 clusters × 100 nodes in P2P, a node
// joining one cluster makes at most 2 writes per cluster (its NodeConfig, and
// its cluster's ClusterPeers shard in each of the other nine: 10 in all); an
// unchanged pass makes none. Under the earlier contract (every agent legacy,
// so every NodeConfig complete) the same join rewrites every NodeConfig of
// the other clusters (measured at 10 × 20, to keep the test fast).
func TestNodeJoinWritesPerCluster(t *testing.T) {
	const clusters = 10
	for _, c := range []struct {
		legacy bool
		nodes  int
	}{{false, 100}, {true, 20}} {
		legacy, nodes := c.legacy, c.nodes
		topo, facts := fleet(t, clusters, nodes, "P2P", legacy)
		before := plan.Compute(plan.Input{Topology: topo, Facts: facts, Now: now})
		if len(before.Problems) > 0 {
			t.Fatal(before.Problems)
		}
		if n, _, what := writes(t, before, plan.Compute(plan.Input{Topology: topo, Facts: facts, Now: now})); n != 0 {
			t.Fatalf("an unchanged pass writes %d objects: %v", n, what)
		}
		f := facts["c3"]
		f.Nodes = append(f.Nodes, fleetNode(3, nodes, legacy))
		facts["c3"] = f
		after := plan.Compute(plan.Input{Topology: topo, Facts: facts, Now: now})
		n, bytes, what := writes(t, before, after)
		t.Logf("%d × %d, legacy agents %v: a node join writes %d objects, %d bytes", clusters, nodes, legacy, n, bytes)
		switch {
		case !legacy && n > 2*clusters:
			t.Errorf("a node join writes %d objects, want ≤ %d: %v", n, 2*clusters, what)
		case !legacy && n != clusters:
			t.Errorf("a node join writes %d objects, want its NodeConfig and one shard in each of %d other clusters: %v", n, clusters-1, what)
		case legacy && n < (clusters-1)*nodes:
			t.Errorf("with legacy agents a join writes only %d objects; every peer NodeConfig should change", n)
		}
	}
}
