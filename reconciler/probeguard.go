package reconciler

import (
	"strings"

	"kosmos.io/kosmos/reconciler/inventory"
)

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
//
// Only what the probe causes is left out (probeObject): in ProbeNamespace,
// a ServiceImport or EndpointSlice named "kosmos-probe-…" (the probe
// Service's name, internal/probe.ServiceName, and the imported slices'
// SliceName) or a Service named "kosmos-kosmos-probe-…" (mcs.DerivedName of
// such an import). Anything else there is guarded like everywhere else.
const ProbeNamespace = "kosmos-probe"

// probeObject tells whether an object Kosmos owns is one the probe caused
// (see ProbeNamespace). Pure.
func probeObject(e inventory.Entry) bool {
	if e.Namespace != ProbeNamespace {
		return false
	}
	switch {
	case e.Kind == "ServiceImport" && strings.HasPrefix(e.APIVersion, "multicluster.x-k8s.io/"),
		e.Kind == "EndpointSlice" && strings.HasPrefix(e.APIVersion, "discovery.k8s.io/"):
		return strings.HasPrefix(e.Name, "kosmos-probe-")
	case e.Kind == "Service" && e.APIVersion == "v1":
		return strings.HasPrefix(e.Name, "kosmos-kosmos-probe-")
	}
	return false
}

// guardVerdict is the deletion guard's verdict on dels against owned (what
// Kosmos owns, that the share is taken of), the probe's objects left out
// of both (probeObject). Apply (prepare.go) and the offline preview
// (OfflineDiff) both judge with it, so the preview's verdict and confirm
// token are apply's. Pure.
func guardVerdict(dels []inventory.Deletion, owned []inventory.Entry, percent int, confirmed string) inventory.Guard {
	var guarded []inventory.Deletion
	for _, d := range dels {
		if !probeObject(d.Entry) {
			guarded = append(guarded, d)
		}
	}
	total := 0
	for _, e := range owned {
		if !probeObject(e) {
			total++
		}
	}
	return inventory.Check(guarded, total, percent, confirmed)
}

// ownedEntries lists every object of the inventory.
func ownedEntries(inv inventory.Inventory) []inventory.Entry {
	var out []inventory.Entry
	for _, r := range inv {
		out = append(out, r.Objects...)
	}
	return out
}
