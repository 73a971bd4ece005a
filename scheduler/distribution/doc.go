// Package distribution is the KosmosDistribution scheduler plugin: it
// places the replicas of a workload matched by a DistributionPolicy across
// clusters by weights or fixed counts, or by spread, counting what is
// already placed in the scheduler's snapshot.
//
// # Extension points
//
// PreFilter decides, once per pod, which clusters may take it (the split
// itself is the pure package split); under a Required policy it narrows the
// nodes to the allowed clusters' and Filter rejects the rest, with the
// reason. Score prefers the clusters furthest below their share. The
// decision is kept in the cycle state, where the KosmosLeafTaint plugin
// reads it through MatchedPolicy.
//
// # Args
//
// Args carries one field, hostCluster (default "host"): the cluster of the
// host's own nodes when a policy names none. ParseArgs is the one place
// where args are decoded, defaulted and validated.
//
// # Usage
//
//	registry := frameworkruntime.Registry{distribution.Name: distribution.New}
//
// and in the KubeSchedulerConfiguration:
//
//	pluginConfig:
//	  - name: KosmosDistribution
//	    args:
//	      hostCluster: host
package distribution
