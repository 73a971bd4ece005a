// Package v1alpha1 holds the Kosmos API, group kosmos.io, version v1alpha1.
//
// # The user's file
//
// KosmosTopology is the one document users keep in git. It names every
// cluster (one host, any number of members), how their pod networks join
// (ClusterLink), whether members appear as nodes of the host (ClusterTree),
// how workloads spread (distribution policies) and which services are shared
// across clusters. It never holds a credential: clusters are reached through a
// kubeconfig Secret or a context of the local kubeconfig.
//
// # Desired state
//
// The reconciler turns a topology into objects that the executors watch; those
// types live here too, each with a status that follows kstatus
// (observedGeneration; conditions Ready, Reconciling, Stalled).
//
// # Defaults
//
// SetDefaults is the only place defaults are applied:
//
//	var t v1alpha1.KosmosTopology
//	// ... decode ...
//	v1alpha1.SetDefaults(&t)
//
// Deep-copy functions are generated (zz_generated.deepcopy.go); run
// `make generate` after changing a type.
package v1alpha1
