package preview

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestOwnerOf: a route leads to the cluster whose GlobalCIDR holds it
// first, else to another cluster's real range; never to its own cluster's
// real range (overlapping clusters both own 10.244.0.0/16).
func TestOwnerOf(t *testing.T) {
	a := cluster("a", "", "IPv4", "", "10.244.0.0/16")
	a.Network.GlobalCIDRs = map[string]string{"10.244.0.0/16": "100.64.0.0/16"}
	b := cluster("b", "", "IPv4", "", "10.244.0.0/16")
	c := cluster("c", "", "IPv4", "", "10.30.0.0/16")
	ranges := rangeOwners(topo(a, b, c))
	cases := []struct{ from, dst, want string }{
		{"c", "100.64.1.0/24", "a"},
		{"c", "10.30.1.0/24", ""}, // its own range: no cross-cluster route
		{"a", "10.30.1.0/24", "c"},
		{"a", "10.244.1.0/24", "b"}, // a's own real range is skipped
		{"c", "10.0.0.0/8", ""},     // wider than any range: nobody's
		{"c", "not-a-cidr", ""},
	}
	for _, tc := range cases {
		if got := ownerOf(ranges, tc.from, tc.dst); got != tc.want {
			t.Errorf("ownerOf(%s, %s) = %q, want %q", tc.from, tc.dst, got, tc.want)
		}
	}
}

// TestFieldChanges: leaves compared by path, named list items by name, so
// reordering moves nothing; absent leaves show as (none).
func TestFieldChanges(t *testing.T) {
	l := func(xs ...any) []any { return xs }
	m := func(kv ...any) map[string]any {
		out := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	before := m("placement", m("clusters", l(m("name", "x", "weight", 2), m("name", "y", "weight", 1)), "mode", "Required"))
	after := m("placement", m("clusters", l(m("name", "y", "weight", 1), m("name", "x", "weight", 3)), "spread", m("by", "region")))
	got := fieldChanges(before, after)
	want := []string{
		"`placement.clusters[x].weight` 2 → 3",
		"`placement.mode` Required → (none)",
		"`placement.spread.by` (none) → region",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestLargeFleetStaysReadable: beyond maxPairLines cluster pairs the route
// lines are summed up, and beyond maxDrawnTunnels the diagram leaves the
// tunnels out and counts them (the clusters are still drawn).
func TestLargeFleetStaysReadable(t *testing.T) {
	var pcs []PairChange
	for i := range 30 {
		pcs = append(pcs, PairChange{From: "a", To: fmt.Sprint("c", i), Added: 1, Removed: 2})
	}
	lines := routeLines(pcs)
	if len(lines) != maxPairLines+1 || lines[maxPairLines] != "**routes** between 6 more cluster pairs: 6 added, 12 removed" {
		t.Errorf("route lines: %d, last %q", len(lines), lines[len(lines)-1])
	}
	var cs []v1alpha1.ClusterSpec
	for i := range 12 { // 66 tunnels
		cs = append(cs, cluster(fmt.Sprint("c", i), "r", v1alpha1.IPv4, "", fmt.Sprintf("10.%d.0.0/16", i)))
	}
	d := diagram(GraphOf(topo(cs...), nil))
	if strings.Contains(d, "---|") || !strings.Contains(d, "66 tunnels join the linked clusters") || !strings.Contains(d, "c_c11[") {
		t.Errorf("diagram of 12 clusters:\n%s", d)
	}
	if err := checkMermaid(strings.SplitN(strings.TrimPrefix(d, "```mermaid\n"), "```", 2)[0]); err != nil {
		t.Error(err)
	}
}
