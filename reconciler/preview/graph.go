package preview

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Graph is the picture of a topology: its clusters grouped by region and
// the tunnels ClusterLink keeps between them.
type Graph struct {
	// Name is the topology's name.
	Name string
	// Regions hold the clusters, sorted by region name; clusters with no
	// region come last, in a region named "".
	Regions []Region
	// Tunnels join every two clusters that both take part in ClusterLink
	// and share an IP family, in topology order.
	Tunnels []Tunnel
}

// Region is a group of clusters of one region, in topology order.
type Region struct {
	Name     string
	Clusters []ClusterBox
}

// ClusterBox is one cluster as drawn.
type ClusterBox struct {
	Name string
	// Role is host or member.
	Role v1alpha1.ClusterRole
	// Mode is P2P or Gateway; Family IPv4, IPv6 or DualStack.
	Mode   v1alpha1.NetworkMode
	Family v1alpha1.IPFamily
	// Linked is false when the cluster's ClusterLink is turned off.
	Linked bool
	// Gateway is the gateway in force (Gateway mode), when known from the
	// plan; empty otherwise.
	Gateway string
	// Candidates is how many gateway candidates are kept (Gateway mode).
	Candidates int32
	// Ranges are the pod and service ranges, with their GlobalCIDRs.
	Ranges []Range
}

// Range is one pod or service range of a cluster.
type Range struct {
	// Kind is "pods" or "services".
	Kind string
	// Real is the range as the cluster addresses it; Global what other
	// clusters see instead ("" when not mapped).
	Real, Global string
}

// Tunnel is a VXLAN path between two clusters (in Gateway mode it ends at
// the cluster's gateway).
type Tunnel struct {
	A, B string
	// Families the two clusters share: "IPv4", "IPv6" or "IPv4+IPv6".
	Families string
}

// GraphOf draws a topology (valid and defaulted). gateways names the
// gateway in force per cluster, when known (see Gateways); nil is fine.
func GraphOf(t *v1alpha1.KosmosTopology, gateways map[string]string) Graph {
	g := Graph{Name: t.Name}
	byRegion := map[string][]ClusterBox{}
	cs := t.Spec.Clusters
	for _, c := range cs {
		byRegion[c.Region] = append(byRegion[c.Region], boxOf(c, gateways[c.Name]))
	}
	names := slices.Sorted(maps.Keys(byRegion))
	if len(names) > 0 && names[0] == "" { // no region: last
		names = append(names[1:], "")
	}
	for _, r := range names {
		g.Regions = append(g.Regions, Region{Name: r, Clusters: byRegion[r]})
	}
	for i := range cs {
		for j := i + 1; j < len(cs); j++ {
			if !cs[i].NetworkEnabled() || !cs[j].NetworkEnabled() {
				continue
			}
			if f := sharedFamilies(cs[i].Network.IPFamily, cs[j].Network.IPFamily); f != "" {
				g.Tunnels = append(g.Tunnels, Tunnel{A: cs[i].Name, B: cs[j].Name, Families: f})
			}
		}
	}
	return g
}

func boxOf(c v1alpha1.ClusterSpec, gateway string) ClusterBox {
	b := ClusterBox{Name: c.Name, Role: c.Role, Mode: c.Network.Mode, Family: c.Network.IPFamily, Linked: c.NetworkEnabled()}
	if b.Mode == v1alpha1.ModeGateway {
		b.Gateway, b.Candidates = gateway, max(c.Network.Gateway.Replicas, 1)
	}
	for _, kr := range []struct {
		kind  string
		cidrs []string
	}{{"pods", c.Network.PodCIDRs}, {"services", c.Network.ServiceCIDRs}} {
		for _, r := range kr.cidrs {
			b.Ranges = append(b.Ranges, Range{Kind: kr.kind, Real: r, Global: c.Network.GlobalCIDRs[r]})
		}
	}
	return b
}

// sharedFamilies names the IP families two clusters both use.
func sharedFamilies(a, b v1alpha1.IPFamily) string {
	uses := func(f v1alpha1.IPFamily, want v1alpha1.IPFamily) bool { return f == want || f == v1alpha1.DualStack }
	var out []string
	for _, f := range []v1alpha1.IPFamily{v1alpha1.IPv4, v1alpha1.IPv6} {
		if uses(a, f) && uses(b, f) {
			out = append(out, string(f))
		}
	}
	return strings.Join(out, "+")
}

// lines is the text of a cluster's box, one entry per line.
func (b ClusterBox) lines() []string {
	out := []string{fmt.Sprintf("%s (%s)", b.Name, b.Role)}
	switch {
	case !b.Linked:
		out = append(out, "ClusterLink off")
	case b.Mode == v1alpha1.ModeGateway && b.Gateway != "":
		out = append(out, fmt.Sprintf("Gateway via %s · %s", b.Gateway, b.Family))
	case b.Mode == v1alpha1.ModeGateway:
		out = append(out, fmt.Sprintf("Gateway, %d candidate(s) · %s", b.Candidates, b.Family))
	default:
		out = append(out, fmt.Sprintf("%s · %s", b.Mode, b.Family))
	}
	for _, r := range b.Ranges {
		if r.Global != "" {
			out = append(out, fmt.Sprintf("%s %s → %s", r.Kind, r.Real, r.Global))
		} else {
			out = append(out, fmt.Sprintf("%s %s", r.Kind, r.Real))
		}
	}
	return out
}

// regionTitle is the title of a region's group.
func regionTitle(r string) string {
	if r == "" {
		return "no region"
	}
	return "region " + r
}

// Mermaid renders the graph as a Mermaid flowchart, in the subset of the
// syntax GitHub and GitLab render (flowchart, subgraph … end, quoted node
// labels with <br/>, undirected links with quoted labels).
func (g Graph) Mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for i, r := range g.Regions {
		fmt.Fprintf(&b, "  subgraph region_%d[\"%s\"]\n", i, mermaidText(regionTitle(r.Name)))
		for _, c := range r.Clusters {
			texts := c.lines()
			for k := range texts {
				texts[k] = mermaidText(texts[k])
			}
			fmt.Fprintf(&b, "    %s[\"%s\"]\n", mermaidID(c.Name), strings.Join(texts, "<br/>"))
		}
		b.WriteString("  end\n")
	}
	for _, t := range g.Tunnels {
		fmt.Fprintf(&b, "  %s ---|\"%s\"| %s\n", mermaidID(t.A), mermaidText(t.Families), mermaidID(t.B))
	}
	return b.String()
}

// mermaidID is a node id for a cluster: cluster names are DNS labels
// (a-z, 0-9, -), and "-" belongs to Mermaid's link syntax, so it becomes
// "_" (which a DNS label never holds: ids stay unique).
func mermaidID(name string) string { return "c_" + strings.ReplaceAll(name, "-", "_") }

// mermaidText escapes text for a quoted Mermaid label: quotes, markup and
// "#" (Mermaid's entity marker) as Mermaid entity codes.
func mermaidText(s string) string {
	return strings.NewReplacer("#", "#35;", `"`, "#quot;", "<", "#lt;", ">", "#gt;", "&", "#amp;").Replace(s)
}

// DOT renders the graph in Graphviz's DOT language: one box per cluster,
// one cluster subgraph per region, an undirected edge per tunnel.
// `dot -Tsvg` turns it into a picture.
func (g Graph) DOT() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph %s {\n  rankdir=LR;\n  node [shape=box];\n", dotQuote(g.Name))
	for i, r := range g.Regions {
		fmt.Fprintf(&b, "  subgraph cluster_%d {\n    label=%s;\n", i, dotQuote(regionTitle(r.Name)))
		for _, c := range r.Clusters {
			fmt.Fprintf(&b, "    %s [label=%s];\n", dotQuote(c.Name), dotQuote(strings.Join(c.lines(), "\n")))
		}
		b.WriteString("  }\n")
	}
	for _, t := range g.Tunnels {
		fmt.Fprintf(&b, "  %s -- %s [label=%s];\n", dotQuote(t.A), dotQuote(t.B), dotQuote(t.Families))
	}
	b.WriteString("}\n")
	return b.String()
}

// dotQuote quotes a DOT string: backslashes and quotes escaped, newlines as
// DOT's centred line break.
func dotQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// sortedKeys returns a map's keys sorted.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K { return slices.Sorted(maps.Keys(m)) }
