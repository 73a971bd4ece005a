package preview

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Input is what a preview is made of.
type Input struct {
	// Old is the topology before the change; nil for a live diff (the
	// clusters' objects are the "before" then).
	Old *v1alpha1.KosmosTopology
	// New is the topology after the change.
	New *v1alpha1.KosmosTopology
	// Report is the diff: every cluster's objects before and after.
	Report reconciler.DiffReport
	// Offline says the report compares two plans over captured facts: the
	// guard's token is then not the one apply will print.
	Offline bool
}

// KindCount is how many objects of one kind a cluster creates, changes and
// deletes.
type KindCount struct {
	Cluster, Kind          string
	Create, Update, Delete int
}

// changesOf diffs every cluster of the report once (a diff renders YAML:
// the callers share it), in report order.
func changesOf(rep reconciler.DiffReport) [][]reconciler.Change {
	out := make([][]reconciler.Change, len(rep.Clusters))
	for i, d := range rep.Clusters {
		out[i] = reconciler.Diff(d.Cluster, d.Before, d.After)
	}
	return out
}

// Summary counts the changes of the report per cluster and kind, in report
// order, kinds sorted. A cluster without changes has no entry.
func Summary(rep reconciler.DiffReport) []KindCount { return summary(rep, changesOf(rep)) }

func summary(rep reconciler.DiffReport, changes [][]reconciler.Change) []KindCount {
	var out []KindCount
	for i, d := range rep.Clusters {
		byKind := map[string]*KindCount{}
		for _, c := range changes[i] {
			kind, _, _ := strings.Cut(c.Key, "/")
			kc := byKind[kind]
			if kc == nil {
				kc = &KindCount{Cluster: d.Cluster, Kind: kind}
				byKind[kind] = kc
			}
			switch c.Action {
			case "create":
				kc.Create++
			case "update":
				kc.Update++
			case "delete":
				kc.Delete++
			}
		}
		for _, k := range sortedKeys(byKind) {
			out = append(out, *byKind[k])
		}
	}
	return out
}

// nameOf is an object's metadata.name.
func nameOf(o map[string]any) string {
	md, _ := o["metadata"].(map[string]any)
	s, _ := md["name"].(string)
	return s
}

// gatewaysOf names the nodes whose NodeConfig carries the gateway role
// label, sorted and joined ("" when none does).
func gatewaysOf(objs reconciler.Objects) string {
	var out []string
	for _, o := range objs {
		md, _ := o["metadata"].(map[string]any)
		labels, _ := md["labels"].(map[string]any)
		if o["kind"] == v1alpha1.KindNodeConfig && labels[v1alpha1.LabelRole] == v1alpha1.RoleGateway {
			out = append(out, nameOf(o))
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// Gateways names the gateway in force per cluster after the change, from
// the planned NodeConfigs (for GraphOf).
func Gateways(rep reconciler.DiffReport) map[string]string {
	out := map[string]string{}
	for _, d := range rep.Clusters {
		if g := gatewaysOf(d.After); g != "" {
			out[d.Cluster] = g
		}
	}
	return out
}

// Notable says in words what a reviewer should notice, in this order:
// clusters joining and leaving, network mode and GlobalCIDR changes,
// gateway moves, routes per cluster pair, distribution policies, objects
// pruned, the deletion guard's verdict, and what the preview left out.
func Notable(in Input) []string { return notable(in, changesOf(in.Report)) }

func notable(in Input, changes [][]reconciler.Change) []string {
	var out []string
	out = append(out, membership(in)...)
	out = append(out, networkChanges(in.Old, in.New)...)
	for _, d := range in.Report.Clusters {
		b, a := gatewaysOf(d.Before), gatewaysOf(d.After)
		switch {
		case b == a:
		case b != "" && a != "":
			out = append(out, fmt.Sprintf("**gateway** of %s moves from %s to %s", d.Cluster, b, a))
		case a != "":
			out = append(out, fmt.Sprintf("**gateway** of %s: %s takes the role", d.Cluster, a))
		default:
			out = append(out, fmt.Sprintf("**gateway** of %s: %s gives up the role; no gateway after the change", d.Cluster, b))
		}
	}
	out = append(out, routeLines(RouteChanges(in.Report, in.Old, in.New))...)
	out = append(out, policyChanges(in.Report, changes)...)
	out = append(out, pruned(in.Report, changes)...)
	out = append(out, guardVerdict(in))
	for _, n := range in.Report.Notes {
		out = append(out, "**note**: "+n)
	}
	return out
}

// membership says which clusters join and which leave.
func membership(in Input) []string {
	var out []string
	if in.Old != nil {
		for _, c := range in.New.Spec.Clusters {
			if in.Old.Spec.Cluster(c.Name) == nil {
				out = append(out, fmt.Sprintf("**cluster %s joins** (%s, %s)", c.Name, c.Role, c.Network.Mode))
			}
		}
	}
	for _, d := range in.Report.Clusters {
		if d.Leaving {
			out = append(out, fmt.Sprintf("**cluster %s leaves**: everything Kosmos wrote there is deleted, then it is forgotten", d.Cluster))
		}
	}
	return out
}

// networkChanges compares the ClusterLink settings of the clusters both
// topologies hold (only with an old topology: a live diff has none).
func networkChanges(old, t *v1alpha1.KosmosTopology) []string {
	if old == nil {
		return nil
	}
	var out []string
	for _, c := range t.Spec.Clusters {
		o := old.Spec.Cluster(c.Name)
		if o == nil {
			continue
		}
		if o.NetworkEnabled() != c.NetworkEnabled() {
			out = append(out, fmt.Sprintf("**ClusterLink** of %s turned %s", c.Name, map[bool]string{true: "on", false: "off"}[c.NetworkEnabled()]))
		}
		if o.Network.Mode != c.Network.Mode {
			out = append(out, fmt.Sprintf("**network mode** of %s: %s → %s", c.Name, o.Network.Mode, c.Network.Mode))
		}
		if !maps.Equal(o.Network.GlobalCIDRs, c.Network.GlobalCIDRs) {
			out = append(out, fmt.Sprintf("**GlobalCIDRs** of %s: %s → %s", c.Name, globalText(o.Network.GlobalCIDRs), globalText(c.Network.GlobalCIDRs)))
		}
	}
	return out
}

// globalText lists GlobalCIDR mappings as "real→global", sorted.
func globalText(m map[string]string) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, "`"+k+"→"+m[k]+"`")
	}
	return strings.Join(parts, ", ")
}

// maxPairLines bounds the route lines of a preview: a change that touches
// every pair of a large fleet is summed up after that many.
const maxPairLines = 24

// routeLines says, per cluster pair, how many routes come and go; beyond
// maxPairLines pairs the rest are summed up in one line.
func routeLines(pcs []PairChange) []string {
	var out []string
	for i, pc := range pcs {
		if i == maxPairLines {
			added, removed := 0, 0
			for _, rest := range pcs[i:] {
				added, removed = added+rest.Added, removed+rest.Removed
			}
			return append(out, fmt.Sprintf("**routes** between %d more cluster pairs: %d added, %d removed", len(pcs)-i, added, removed))
		}
		out = append(out, fmt.Sprintf("**routes** %s → %s: %d added, %d removed", pc.From, pc.To, pc.Added, pc.Removed))
	}
	return out
}
