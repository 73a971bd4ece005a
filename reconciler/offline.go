package reconciler

import (
	"fmt"
	"time"

	"kosmos.io/kosmos/reconciler/inventory"
	"kosmos.io/kosmos/reconciler/plan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// OfflineDiff previews a change with no cluster access: the plans of the
// old and the new topology over the same facts (captured by `kosmos
// facts`), compared cluster by cluster. A cluster only the old topology
// holds is leaving: everything planned for it goes. The guard judges the
// deletions against what the old plan owns (namespaces aside, as prune
// never deletes them), as apply does (guardVerdict). It is pure.
func OfflineDiff(old, t *v1alpha1.KosmosTopology, facts plan.Facts, now time.Time, guardPercent int) (DiffReport, error) {
	in := plan.Input{Facts: facts, Now: now}
	in.Topology = old
	before := plan.Compute(in)
	in.Topology = t
	after := plan.Compute(in)
	var rep DiffReport
	var dels []inventory.Deletion
	var owned []inventory.Entry
	add := func(name string, leaving bool) error {
		var b, a Objects
		var err error
		if pc := before.Cluster(name); pc != nil {
			if b, err = DesiredObjects(pc.Objects); err != nil {
				return err
			}
		}
		if pc := after.Cluster(name); pc != nil {
			if a, err = DesiredObjects(pc.Objects); err != nil {
				return err
			}
			if pc.Unobserved != "" {
				rep.Notes = append(rep.Notes, fmt.Sprintf("cluster %s %s", name, pc.Unobserved))
			}
		}
		for key, m := range b {
			if m["kind"] == "Namespace" {
				continue
			}
			owned = append(owned, entryOf(m))
			if _, ok := a[key]; !ok {
				dels = append(dels, inventory.Deletion{Cluster: name, Entry: entryOf(m)})
			}
		}
		rep.Clusters = append(rep.Clusters, ClusterDiff{Cluster: name, Before: b, After: a, Leaving: leaving})
		return nil
	}
	for _, c := range t.Spec.Clusters {
		if err := add(c.Name, false); err != nil {
			return DiffReport{}, err
		}
	}
	for _, c := range old.Spec.Clusters {
		if t.Spec.Cluster(c.Name) == nil {
			if err := add(c.Name, true); err != nil {
				return DiffReport{}, err
			}
		}
	}
	// The same verdict as apply's (probeguard.go): the probe's objects left out.
	rep.Guard = guardVerdict(dels, owned, guardPercent, t.Annotations[v1alpha1.AnnotationConfirmDeletions])
	return rep, nil
}

// entryOf names a planned object as the inventory would (no UID: it is not
// applied).
func entryOf(m map[string]any) inventory.Entry {
	md, _ := m["metadata"].(map[string]any)
	str := func(v any) string { s, _ := v.(string); return s }
	return inventory.Entry{APIVersion: str(m["apiVersion"]), Kind: str(m["kind"]), Namespace: str(md["namespace"]), Name: str(md["name"])}
}
