package nodeagent

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

func TestNATFlowsToReset(t *testing.T) {
	edge := func(routes ...v1alpha1.Route) *v1alpha1.NodeConfigSpec {
		return &v1alpha1.NodeConfigSpec{Routes: routes, NAT: v1alpha1.NATSpec{EdgeDevices: []string{"vx-bridge"},
			Mappings: []v1alpha1.NATMapping{{RealCIDR: "10.244.0.0/16", GlobalCIDR: "100.65.0.0/16"}}}}
	}
	direct := v1alpha1.Route{Dst: "10.10.0.0/16", Via: "220.168.5.11", Device: "vx-bridge"}
	viaG2 := v1alpha1.Route{Dst: "10.10.0.0/16", Via: "210.168.5.22", Device: "vx-local"}
	other := v1alpha1.Route{Dst: "10.30.0.0/16", Via: "220.168.5.31", Device: "vx-bridge"}
	plain := &v1alpha1.NodeConfigSpec{Routes: []v1alpha1.Route{viaG2}}
	for _, c := range []struct {
		name       string
		prev, next *v1alpha1.NodeConfigSpec
		want       NATFlowSet
	}{
		{"first pass of an edge: everything mapped", nil, edge(direct), NATFlowSet{Real: pfx("10.244.0.0/16"), Global: pfx("100.65.0.0/16"), Remote: pfx("10.10.0.0/16")}},
		{"routes unchanged: nothing", edge(direct, other), edge(other, direct), NATFlowSet{}},
		{"the way out moved: the mapped range's flows to the moved ranges",
			edge(direct, other), edge(viaG2, v1alpha1.Route{Dst: "10.30.0.0/16", Via: "210.168.5.22", Device: "vx-local"}),
			NATFlowSet{Real: pfx("10.244.0.0/16"), Global: pfx("100.65.0.0/16"), Remote: pfx("10.10.0.0/16", "10.30.0.0/16")}},
		{"no NAT on the node: nothing", &v1alpha1.NodeConfigSpec{Routes: []v1alpha1.Route{direct}}, plain, NATFlowSet{}},
		{"only the moved range's flows", edge(direct, other), edge(viaG2, other),
			NATFlowSet{Real: pfx("10.244.0.0/16"), Global: pfx("100.65.0.0/16"), Remote: pfx("10.10.0.0/16")}},
		{"a remote node joined (a new range): nothing", edge(direct), edge(direct, other), NATFlowSet{}},
		{"a remote node left: nothing", edge(direct, other), edge(direct), NATFlowSet{}},
		{"a remote gateway failover behind the same edge device: nothing", edge(direct, other),
			edge(direct, v1alpha1.Route{Dst: "10.30.0.0/16", Via: "220.168.5.32", Device: "vx-bridge"}), NATFlowSet{}},
		{"per remote node before, per cluster after (a candidate leaving the way out)",
			edge(v1alpha1.Route{Dst: "10.10.1.0/24", Via: "220.168.5.11", Device: "vx-bridge"}, other), edge(viaG2, other),
			NATFlowSet{Real: pfx("10.244.0.0/16"), Global: pfx("100.65.0.0/16"), Remote: pfx("10.10.0.0/16")}},
		{"handed to another sibling", edge(viaG2), edge(v1alpha1.Route{Dst: "10.10.0.0/16", Via: "210.168.5.23", Device: "vx-local"}),
			NATFlowSet{Real: pfx("10.244.0.0/16"), Global: pfx("100.65.0.0/16"), Remote: pfx("10.10.0.0/16")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := natFlowsToReset(c.prev, c.next)
			if !slices.Equal(got.Real, c.want.Real) || !slices.Equal(got.Global, c.want.Global) || !slices.Equal(got.Remote, c.want.Remote) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
	f := NATFlowSet{Real: pfx("10.244.0.0/16"), Global: pfx("100.65.0.0/16"), Remote: pfx("10.10.0.0/16")}
	for _, c := range []struct {
		src, dst string
		want     bool
	}{
		{"10.244.1.2", "10.10.1.2", true},
		{"10.10.1.2", "100.65.1.2", true},  // from another cluster, by the global address
		{"10.10.1.2", "10.244.1.2", false}, // from another cluster to a real address: not translated here
		{"10.244.1.2", "8.8.8.8", false},   // to the internet: not Kosmos's
		{"10.244.1.2", "10.244.2.2", false},
		{"::ffff:10.244.1.2", "::ffff:10.10.1.2", true},
	} {
		if got := f.matches(netip.MustParseAddr(c.src), netip.MustParseAddr(c.dst)); got != c.want {
			t.Errorf("flow %s → %s: reset %v, want %v", c.src, c.dst, got, c.want)
		}
	}
}

// TestNATFlowsSettle: the reset runs on the first good pass and once per
// move after it, after a good pass only, comparing with the last config
// applied.
func TestNATFlowsSettle(t *testing.T) {
	var resets int
	n := &NATFlows{Reset: func(NATFlowSet) (int, error) { resets++; return 1, nil }}
	a := &v1alpha1.NodeConfigSpec{Routes: []v1alpha1.Route{{Dst: "10.10.0.0/16", Via: "220.0.0.1", Device: "vx-bridge"}},
		NAT: v1alpha1.NATSpec{EdgeDevices: []string{"vx-bridge"}, Mappings: []v1alpha1.NATMapping{{RealCIDR: "10.244.0.0/16", GlobalCIDR: "100.65.0.0/16"}}}}
	b := a.DeepCopy()
	b.Routes[0] = v1alpha1.Route{Dst: "10.10.0.0/16", Via: "210.0.0.2", Device: "vx-local"}
	steps := []struct {
		spec  *v1alpha1.NodeConfigSpec
		err   error
		reset int
	}{{a, nil, 1}, {a, nil, 1}, {b, errors.New("failed"), 1}, {b, nil, 2}, {b, nil, 2}, {nil, nil, 2}, {a, nil, 3}}
	for i, s := range steps {
		if err := n.Settle(s.spec, s.err); err != nil {
			t.Fatal(err)
		}
		if resets != s.reset {
			t.Errorf("step %d: %d resets, want %d", i, resets, s.reset)
		}
	}
}

// TestNATFlowsSettleRetries: a reset that failed is tried again on the
// next good pass (the comparison stays with the config before the move).
func TestNATFlowsSettleRetries(t *testing.T) {
	var calls int
	fail := true
	n := &NATFlows{Reset: func(NATFlowSet) (int, error) {
		calls++
		if fail {
			return 0, errors.New("ENOBUFS")
		}
		return 1, nil
	}}
	a := &v1alpha1.NodeConfigSpec{Routes: []v1alpha1.Route{{Dst: "10.10.0.0/16", Via: "220.0.0.1", Device: "vx-bridge"}},
		NAT: v1alpha1.NATSpec{EdgeDevices: []string{"vx-bridge"}, Mappings: []v1alpha1.NATMapping{{RealCIDR: "10.244.0.0/16", GlobalCIDR: "100.65.0.0/16"}}}}
	b := a.DeepCopy()
	b.Routes[0] = v1alpha1.Route{Dst: "10.10.0.0/16", Via: "210.0.0.2", Device: "vx-local"}
	fail = false
	if err := n.Settle(a, nil); err != nil || calls != 1 {
		t.Fatalf("first pass: err %v, %d calls", err, calls)
	}
	fail = true
	if err := n.Settle(b, nil); err == nil || calls != 2 {
		t.Fatalf("the move, failing: err %v, %d calls", err, calls)
	}
	fail = false
	if err := n.Settle(b, nil); err != nil || calls != 3 {
		t.Fatalf("the next pass must try again: err %v, %d calls", err, calls)
	}
	if err := n.Settle(b, nil); err != nil || calls != 3 {
		t.Fatalf("then nothing more: err %v, %d calls", err, calls)
	}
}

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}
