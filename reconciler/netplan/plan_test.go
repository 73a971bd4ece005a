package netplan

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/internal/testinfra/golden"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// factsFile is the YAML form of Facts used by the golden cases.
type factsFile map[string]struct {
	Gateway string `json:"gateway"`
	Nodes   []struct {
		Name     string            `json:"name"`
		IPs      []string          `json:"ips"`
		PodCIDRs []string          `json:"podCIDRs"`
		NotReady bool              `json:"notReady"`
		Labels   map[string]string `json:"labels"`
	} `json:"nodes"`
}

func loadCase(t testing.TB, dir string) (*v1alpha1.TopologySpec, Facts) {
	t.Helper()
	topo, err := schema.LoadFile(filepath.Join(dir, "topology.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "facts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ff factsFile
	if err := yaml.UnmarshalStrict(data, &ff); err != nil {
		t.Fatal(err)
	}
	facts := Facts{}
	for cluster, cf := range ff {
		f := ClusterFacts{Gateway: cf.Gateway}
		for _, n := range cf.Nodes {
			node := Node{Name: n.Name, Ready: !n.NotReady, Labels: n.Labels}
			for _, ip := range n.IPs {
				node.InternalIPs = append(node.InternalIPs, netip.MustParseAddr(ip))
			}
			for _, c := range n.PodCIDRs {
				node.PodCIDRs = append(node.PodCIDRs, netip.MustParsePrefix(c))
			}
			f.Nodes = append(f.Nodes, node)
		}
		facts[cluster] = f
	}
	return &topo.Spec, facts
}

// TestGoldenPlans computes the plan of every case in testdata and compares it
// with plan.golden.yaml.
func TestGoldenPlans(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/*")
	if len(dirs) < 5 {
		t.Fatalf("only %d cases", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			spec, facts := loadCase(t, dir)
			got, err := yaml.Marshal(Compute(spec, facts))
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, filepath.Join(dir, "plan.golden.yaml"), got)
		})
	}
}

// TestGoldenDerived: what every node's agent derives from its NodeConfig and
// the other clusters' ClusterPeers (its complete kernel entries), per case,
// in derived.golden.yaml. These files began as the complete NodeConfigs of
// the earlier contract (plan.golden.yaml before the split, with the entry
// lists sorted): the split changed where entries are written, not what a
// node holds.
func TestGoldenDerived(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/*")
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			spec, facts := loadCase(t, dir)
			p := Compute(spec, facts)
			out := map[string][]v1alpha1.NodeConfig{}
			for _, c := range p.Clusters {
				d, err := p.Derived(c.Name)
				if err != nil {
					t.Fatal(err)
				}
				for i := range d {
					d[i].Spec.Peers = nil // shown in plan.golden.yaml
				}
				out[c.Name] = d
			}
			got, err := yaml.Marshal(out)
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, filepath.Join(dir, "derived.golden.yaml"), got)
		})
	}
}

// TestLegacyAgentsGetCompleteConfigs: a node whose agent is of the earlier
// release gets the complete entries in its NodeConfig (what the others
// derive), and keeps spec.peers for when its agent is upgraded.
func TestLegacyAgentsGetCompleteConfigs(t *testing.T) {
	spec, facts := loadCase(t, "testdata/mixed-global")
	p := Compute(spec, facts)
	for name, f := range facts {
		nodes := slices.Clone(f.Nodes)
		for i := range nodes {
			nodes[i].LegacyAgent = true
		}
		facts[name] = ClusterFacts{Nodes: nodes, Gateway: f.Gateway}
	}
	legacy := Compute(spec, facts)
	if !reflect.DeepEqual(legacy.AllPeers(), p.AllPeers()) {
		t.Error("legacy agents changed the shared objects")
	}
	for _, c := range p.Clusters {
		want, err := p.Derived(c.Name)
		if err != nil {
			t.Fatal(err)
		}
		for i, nc := range legacy.Cluster(c.Name).Configs {
			if !reflect.DeepEqual(nc.Spec, want[i].Spec) {
				t.Errorf("%s/%s: legacy config differs from what a new agent derives", c.Name, nc.Name)
			}
			if nc.Spec.Peers == nil && len(nc.Spec.Devices) > 0 {
				t.Errorf("%s/%s: legacy config lost spec.peers", c.Name, nc.Name)
			}
		}
	}
}

func TestPlanIsDeterministic(t *testing.T) {
	spec, facts := loadCase(t, "testdata/mixed-global")
	want := Compute(spec, facts)
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := Facts{}
		for k, f := range facts {
			nodes := append([]Node(nil), f.Nodes...)
			r.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
			shuffled[k] = ClusterFacts{Nodes: nodes, Gateway: f.Gateway}
		}
		if got := Compute(spec, shuffled); !reflect.DeepEqual(got, want) {
			t.Fatal("plan depends on the order of the observed nodes")
		}
	}
}

func configsByNode(p *Plan) map[string]v1alpha1.NodeConfigSpec {
	out := map[string]v1alpha1.NodeConfigSpec{}
	for _, c := range p.Clusters {
		for _, nc := range c.Configs {
			out[c.Name+"/"+nc.Name] = nc.Spec
		}
	}
	return out
}

func peersByName(p *Plan) map[string]v1alpha1.ClusterPeersSpec {
	out := map[string]v1alpha1.ClusterPeersSpec{}
	for _, c := range p.Clusters {
		for _, cp := range c.Peers {
			out["peers "+cp.Name] = cp.Spec
		}
	}
	return out
}

// changed lists the NodeConfigs ("cluster/node") and ClusterPeers
// ("peers name") that differ between two plans.
func changed(a, b *Plan) []string {
	out := changedIn(configsByNode(a), configsByNode(b))
	return append(out, changedIn(peersByName(a), peersByName(b))...)
}

func changedIn[T any](before, after map[string]T) []string {
	var out []string
	for k, v := range after {
		if old, ok := before[k]; !ok || !reflect.DeepEqual(old, v) {
			out = append(out, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// TestNodeJoinChangesOnlyWhatMust: a node joining a P2P cluster adds its own
// config and changes its cluster's ClusterPeers shard (which every other
// cluster holds), and no other config anywhere; a node joining a Gateway
// cluster changes only itself and its gateway candidates (which reach it
// over vx-local), not the shared objects.
func TestNodeJoinChangesOnlyWhatMust(t *testing.T) {
	spec, facts := loadCase(t, "testdata/mixed-global")
	before := Compute(spec, facts)

	join := func(cluster string, n Node) []string {
		f := facts[cluster]
		more := Facts{}
		for k, v := range facts {
			more[k] = v
		}
		more[cluster] = ClusterFacts{Nodes: append(append([]Node(nil), f.Nodes...), n), Gateway: f.Gateway}
		after := Compute(spec, more)
		if len(after.Problems) != 0 {
			t.Fatalf("problems: %v", after.Problems)
		}
		return changed(before, after)
	}
	got := join("member-a", Node{Name: "a9", Ready: true, InternalIPs: []netip.Addr{netip.MustParseAddr("192.168.2.99")}, PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.9.0/24")}})
	for _, k := range got {
		if strings.HasPrefix(k, "member-a/") && k != "member-a/a9" {
			t.Errorf("P2P join changed %s in its own cluster", k)
		}
	}
	slices.Sort(got)
	if want := []string{"member-a/a9", "peers member-a.0-of-1"}; !slices.Equal(got, want) {
		t.Errorf("P2P join changed %v, want %v", got, want)
	}

	got = join("member-b", Node{Name: "b9", Ready: true, InternalIPs: []netip.Addr{netip.MustParseAddr("192.168.3.99")}, PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.9.0/24")}})
	// Every gateway candidate reaches the new node over vx-local (hot
	// standbys): they change with it, and nothing else does.
	cp := before.Cluster("member-b")
	want := []string{"member-b/b9"}
	for _, g := range slices.Concat([]string{cp.Gateway}, cp.Standby) {
		want = append(want, "member-b/"+g)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Gateway join changed %v, want only %v (the new node and the gateway candidates)", got, want)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestGatewayIsStickyAndFailsOver(t *testing.T) {
	spec, facts := loadCase(t, "testdata/mixed-global")
	f := facts["member-b"]
	first := Compute(spec, facts).Cluster("member-b").Gateway
	if first == "" {
		t.Fatal("no gateway elected")
	}
	// A later candidate that is the current gateway stays the gateway.
	var other string
	for _, n := range f.Nodes {
		if n.Name != first && n.Labels["kosmos.io/gateway"] == "true" {
			other = n.Name
		}
	}
	facts["member-b"] = ClusterFacts{Nodes: f.Nodes, Gateway: other}
	if got := Compute(spec, facts).Cluster("member-b").Gateway; got != other {
		t.Errorf("current gateway %s replaced by %s while Ready", other, got)
	}
	// The gateway goes NotReady: the other candidate takes over.
	nodes := append([]Node(nil), f.Nodes...)
	for i := range nodes {
		if nodes[i].Name == other {
			nodes[i].Ready = false
		}
	}
	facts["member-b"] = ClusterFacts{Nodes: nodes, Gateway: other}
	if got := Compute(spec, facts).Cluster("member-b").Gateway; got == other || got == "" {
		t.Errorf("gateway stayed on NotReady %s (got %q)", other, got)
	}
	// Every node NotReady at once (the control plane cannot hear its
	// kubelets): the gateway in force stays, and so do its routes.
	for i := range nodes {
		nodes[i].Ready = false
	}
	facts["member-b"] = ClusterFacts{Nodes: nodes, Gateway: other}
	if got := Compute(spec, facts).Cluster("member-b").Gateway; got != other {
		t.Errorf("with every node NotReady the gateway moved from %s to %q", other, got)
	}
	// They come back one by one, the gateway last: a candidate that turned
	// Ready after the gateway fell takes nothing over.
	fell := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range nodes {
		nodes[i].ReadySince = fell
		if nodes[i].Name != other {
			nodes[i].Ready, nodes[i].ReadySince = true, fell.Add(time.Minute)
		}
	}
	facts["member-b"] = ClusterFacts{Nodes: nodes, Gateway: other}
	if got := Compute(spec, facts).Cluster("member-b").Gateway; got != other {
		t.Errorf("recovering from an outage, the gateway moved from %s to %q", other, got)
	}
	for i := range nodes {
		nodes[i].Ready = false
	}
	// No gateway in force and no Ready candidate: a NotReady one is better
	// than none.
	facts["member-b"] = ClusterFacts{Nodes: nodes}
	if got := Compute(spec, facts).Cluster("member-b").Gateway; got == "" {
		t.Error("no gateway elected among NotReady candidates")
	}
}

// TestNotReadyKeepsRoutes: a NotReady node keeps its routes in its peers;
// only its deletion withdraws them.
func TestNotReadyKeepsRoutes(t *testing.T) {
	spec, facts := loadCase(t, "testdata/p2p-ipv4")
	routes := func(f Facts) map[string]bool {
		out := map[string]bool{}
		p := Compute(spec, f)
		for _, c := range p.Clusters {
			derived, err := p.Derived(c.Name)
			if err != nil {
				t.Fatal(err)
			}
			for _, nc := range derived {
				for _, r := range nc.Spec.Routes {
					out[c.Name+"/"+nc.Name+" "+r.Dst] = true
				}
			}
		}
		return out
	}
	before := routes(facts)
	var name string
	for c, f := range facts {
		nodes := slices.Clone(f.Nodes)
		nodes[0].Ready = false
		name = c + "/" + nodes[0].Name
		facts[c] = ClusterFacts{Nodes: nodes, Gateway: f.Gateway}
		break
	}
	if after := routes(facts); !maps.Equal(before, after) {
		t.Errorf("%s went NotReady and the routes changed:\nbefore %v\nafter  %v", name, before, after)
	}
}

func TestAddressHelpers(t *testing.T) {
	for _, c := range []struct{ underlay, cidr, want string }{
		{"192.168.1.10", "220.0.0.0/8", "220.168.1.10"},
		{"10.0.0.5", "210.0.0.0/8", "210.0.0.5"},
		{"10.1.2.3", "220.16.0.0/12", "220.17.2.3"},
		{"fd00::1:10", "9470::/16", "9470::1:10"},
		{"2001:db8:aa::7", "9480::/16", "9480:db8:aa::7"},
	} {
		got := keepHostBits(netip.MustParseAddr(c.underlay), netip.MustParsePrefix(c.cidr))
		if got.String() != c.want {
			t.Errorf("keepHostBits(%s, %s) = %s, want %s", c.underlay, c.cidr, got, c.want)
		}
	}
	for _, c := range []struct{ p, real, global, want string }{
		{"10.244.3.0/24", "10.244.0.0/16", "100.64.0.0/16", "100.64.3.0/24"},
		{"10.96.0.0/16", "10.96.0.0/16", "100.80.0.0/16", "100.80.0.0/16"},
		{"fd00:30:0:5::/64", "fd00:30::/56", "fd99:1::/56", "fd99:1:0:5::/64"},
	} {
		got := mapPrefix(netip.MustParsePrefix(c.p), netip.MustParsePrefix(c.real), netip.MustParsePrefix(c.global))
		if got.String() != c.want {
			t.Errorf("mapPrefix(%s) = %s, want %s", c.p, got, c.want)
		}
	}
	m := deviceMAC("c", "n", "vx-bridge")
	if m != deviceMAC("c", "n", "vx-bridge") || m == deviceMAC("c", "n", "vx-local") || m[1] != '2' && m[1] != '6' && m[1] != 'a' && m[1] != 'e' {
		t.Errorf("deviceMAC not stable, unique or locally administered unicast: %s", m)
	}
}

// TestSharding: a cluster's endpoints are split over a power of two of
// ClusterPeers shards once there are more than PeersShardSize; every
// endpoint is in exactly one shard, every shard repeats the cluster's
// CIDRs; a node joining changes one shard.
func TestSharding(t *testing.T) {
	for n, want := range map[int]int{0: 1, 1: 1, 256: 1, 257: 2, 512: 2, 513: 4, 1000: 4, 1025: 8} {
		if got := ShardCount(n); got != want {
			t.Errorf("ShardCount(%d) = %d, want %d", n, got, want)
		}
	}
	spec, facts := synthetic(2, 1000, v1alpha1.ModeP2P)
	p := Compute(spec, facts)
	shards := p.Cluster("c1").Peers
	if len(shards) != 4 {
		t.Fatalf("%d shards, want 4", len(shards))
	}
	seen := map[string]bool{}
	for i, s := range shards {
		if s.Name != PeersName("c1", i, 4) || s.Spec.Shard != int32(i) || s.Spec.Shards != 4 || len(s.Spec.CIDRs) == 0 {
			t.Errorf("shard %d: %s %+v", i, s.Name, s.Spec.CIDRs)
		}
		if len(s.Spec.Endpoints) < 150 || len(s.Spec.Endpoints) > 350 {
			t.Errorf("shard %d holds %d endpoints", i, len(s.Spec.Endpoints))
		}
		for _, e := range s.Spec.Endpoints {
			if seen[e.Name] {
				t.Errorf("%s in two shards", e.Name)
			}
			seen[e.Name] = true
		}
	}
	if len(seen) != 1000 {
		t.Errorf("%d endpoints in the shards, want 1000", len(seen))
	}
	f := facts["c1"]
	facts["c1"] = ClusterFacts{Gateway: f.Gateway, Nodes: append(slices.Clone(f.Nodes), Node{Name: "z-joiner", Ready: true, // sorts last: the first node also receives the service ranges
		InternalIPs: []netip.Addr{netip.MustParseAddr("192.1.9.9")}, PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.255.0/26")}})}
	var changedShards []string
	for _, k := range changed(p, Compute(spec, facts)) {
		if strings.HasPrefix(k, "peers ") {
			changedShards = append(changedShards, k)
		}
	}
	if len(changedShards) != 1 {
		t.Errorf("a join changed shards %v, want one", changedShards)
	}
}
