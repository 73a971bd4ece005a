package preview

import (
	"fmt"
	"strings"

	"kosmos.io/kosmos/reconciler"
)

// maxListed bounds the entries one line lists; the rest are counted.
const maxListed = 8

// policyChanges says which DistributionPolicies are created, removed or
// changed, and for a change which fields move (old → new).
func policyChanges(rep reconciler.DiffReport, changes [][]reconciler.Change) []string {
	var out []string
	for i, d := range rep.Clusters {
		for _, c := range changes[i] {
			kind, name, _ := strings.Cut(c.Key, "/")
			if kind != "DistributionPolicy" {
				continue
			}
			switch c.Action {
			case "create":
				out = append(out, fmt.Sprintf("**distribution policy** %s is created", name))
			case "delete":
				out = append(out, fmt.Sprintf("**distribution policy** %s is removed", name))
			default:
				moves := fieldChanges(d.Before[c.Key]["spec"], d.After[c.Key]["spec"])
				out = append(out, fmt.Sprintf("**distribution policy** %s changes: %s", name, listed(moves)))
			}
		}
	}
	return out
}

// fieldChanges compares two values leaf by leaf: "path: old → new", sorted
// by path. A list of named maps is indexed by name, so a reordered list
// moves nothing.
func fieldChanges(before, after any) []string {
	b, a := map[string]string{}, map[string]string{}
	flatten("", before, b)
	flatten("", after, a)
	paths := map[string]bool{}
	for p := range b {
		paths[p] = true
	}
	for p := range a {
		paths[p] = true
	}
	var out []string
	for _, p := range sortedKeys(paths) {
		ov, okB := b[p]
		nv, okA := a[p]
		if ov == nv && okA == okB {
			continue
		}
		if !okB {
			ov = "(none)"
		}
		if !okA {
			nv = "(none)"
		}
		out = append(out, fmt.Sprintf("`%s` %s → %s", p, ov, nv))
	}
	return out
}

// flatten writes every leaf of v under its path.
func flatten(prefix string, v any, out map[string]string) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			flatten(join(k), x[k], out)
		}
	case []any:
		for i, e := range x {
			key := fmt.Sprint(i)
			if m, ok := e.(map[string]any); ok {
				if n, ok := m["name"].(string); ok {
					key = n
				}
			}
			flatten(prefix+"["+key+"]", e, out)
		}
	case nil:
	default:
		out[prefix] = fmt.Sprint(x)
	}
}

// pruned lists, per cluster, the objects the change deletes. Namespaces
// are left out: prune never deletes one (an offline diff of a leaving
// cluster still shows its kosmos-system namespace going).
func pruned(rep reconciler.DiffReport, changes [][]reconciler.Change) []string {
	var out []string
	for i, d := range rep.Clusters {
		var keys []string
		for _, c := range changes[i] {
			if c.Action == "delete" && !strings.HasPrefix(c.Key, "Namespace/") {
				keys = append(keys, "`"+c.Key+"`")
			}
		}
		if len(keys) > 0 {
			out = append(out, fmt.Sprintf("**prune** in %s (%d): %s", d.Cluster, len(keys), listed(keys)))
		}
	}
	return out
}

// listed joins at most maxListed items and counts the rest.
func listed(items []string) string {
	if len(items) == 0 {
		return "no field"
	}
	if len(items) <= maxListed {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:maxListed], ", "), len(items)-maxListed)
}

// guardVerdict says what the deletion guard makes of the change.
func guardVerdict(in Input) string {
	g := in.Report.Guard
	switch {
	case g.Deletions == 0:
		return "**deletion guard**: nothing Kosmos owns is deleted"
	case g.Tripped && in.Offline:
		return fmt.Sprintf("**deletion guard: tripped**: %d of the %d objects Kosmos owns are deleted (more than %d%%); apply writes nothing until the deletions are confirmed (kosmos apply prints the token)", g.Deletions, g.Total, g.Percent)
	case g.Tripped:
		return fmt.Sprintf("**deletion guard: tripped**: %d of the %d objects Kosmos owns are deleted (more than %d%%); apply writes nothing until confirmed with `kosmos apply --confirm-deletions %s`", g.Deletions, g.Total, g.Percent, g.Token)
	case g.Deletions*100 > g.Total*g.Percent && g.Percent < 100:
		return fmt.Sprintf("**deletion guard**: confirmed: %d of the %d objects Kosmos owns are deleted (more than %d%%, confirmed by token)", g.Deletions, g.Total, g.Percent)
	default:
		return fmt.Sprintf("**deletion guard**: passes: %d of the %d objects Kosmos owns are deleted (threshold %d%%)", g.Deletions, g.Total, g.Percent)
	}
}
