// Package scheduler is `kosmos scheduler`: the real kube-scheduler, in
// process or as a command, with the Kosmos framework plugins registered.
//
// # Plugins
//
// Each plugin is a package of its own, with an exported Name and New:
//
//   - distribution (KosmosDistribution): splits the replicas of a workload
//     matched by a DistributionPolicy over clusters; the only plugin with
//     args (hostCluster).
//   - leaffit (KosmosLeafFit): a pod goes to a member cluster only when one
//     of its nodes can hold it.
//   - leaftaint (KosmosLeafTaint): TaintToleration's filter, with the
//     virtual-node taint tolerated for pods a policy sends to members.
//   - volumebinding (KosmosVolumeBinding): VolumeBinding and VolumeZone on
//     the host's nodes; on virtual nodes, pods with unbound claims fit when
//     the member offers their storage classes.
//
// The pure replica split lives in split; the DistributionPolicy store and
// the pod matching in policies. The plugins never write pods: binding is
// kube-scheduler's.
//
// # Usage
//
// As a command (every kube-scheduler flag):
//
//	root.AddCommand(scheduler.Command())
//	// kosmos scheduler --config kustomize/base/scheduler/scheduler-config.yaml
//
// In process (tests, the local sandbox), until ctx ends:
//
//	done, err := scheduler.Run(ctx, configFile)
//
// The KubeSchedulerConfiguration's kosmos-scheduler profile
// (kustomize/base/scheduler) enables the plugins and disables
// TaintToleration, which KosmosLeafTaint replaces, and VolumeBinding and
// VolumeZone, which KosmosVolumeBinding wraps.
package scheduler
