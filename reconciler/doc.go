// Package reconciler makes every cluster of a topology hold what the
// topology wants, and previews it first.
//
// # Stages
//
// A pass (Pass), and its preview (LiveDiff), go through the same stages:
//
//   - connect (clusters.go): a client per cluster, through kubeconfig
//     contexts (the CLI) or kubeconfig Secrets (the controller);
//   - observe (observe.go, prepare.go): each cluster's facts, network and
//     services (reconciler/mcs), carried over from the last pass for a
//     cluster that does not answer;
//   - inventory (prepare.go, reconciler/inventory): what Kosmos applied in
//     every cluster, read from the host; clusters the topology no longer
//     holds are reached for their last prune;
//   - plan (reconciler/plan): one pure function from topology and facts to
//     every object of every cluster; render, diff and apply all call it;
//   - guard (reconciler/inventory.Check): a pass that would delete too much
//     of what Kosmos owns writes nothing until confirmed;
//   - apply and prune (reconciler/apply): server-side apply where the live
//     object differs, deletes of stale inventory entries under UID
//     preconditions, and the new inventory recorded.
//
// The pure diff of two states is diff.go; reading the live side livediff.go;
// printing it unified.go; the offline preview (two topologies over captured
// facts) offline.go.
//
// # Around the pass
//
// Controller runs passes on every change of the source (a file or a
// KosmosTopology object, source.go), of the clusters' nodes and exports, and
// on every resync; it reports kstatus conditions on the object (status.go)
// and, for a deleted object, prunes everything before releasing its
// finalizer.
package reconciler
