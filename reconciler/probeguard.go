package reconciler

import "kosmos.io/kosmos/reconciler/inventory"

// ProbeNamespace holds only the short-lived objects of `kosmos check
// --probe` (internal/probe.DefaultNamespace, kustomize/base/probe): with
// --services every cluster exports a probe Service for the minutes of a
// check, and the reconciler imports each into every cluster (ServiceImport,
// derived Service, EndpointSlices: 3 objects per cluster and exporter). In
// a small fleet those are a large part of what Kosmos owns, so their prune
// when the check ends would trip the deletion guard and stall every write
// until someone confirmed it. Their deletions are therefore left out of the
// guard (they are still pruned, with UID preconditions, like any other),
// and so are they from the total the guard compares with.
const ProbeNamespace = "kosmos-probe"

// guardedDeletions are the deletions and the inventory total the deletion
// guard judges: those of ProbeNamespace left out. Pure.
func guardedDeletions(dels []inventory.Deletion, inv inventory.Inventory) ([]inventory.Deletion, int) {
	var out []inventory.Deletion
	for _, d := range dels {
		if d.Entry.Namespace != ProbeNamespace {
			out = append(out, d)
		}
	}
	total := 0
	for _, r := range inv {
		for _, e := range r.Objects {
			if e.Namespace != ProbeNamespace {
				total++
			}
		}
	}
	return out, total
}
