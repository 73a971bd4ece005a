// Package leaftaint is the KosmosLeafTaint scheduler plugin. It replaces
// TaintToleration's filter in the kosmos-scheduler profile: the same rule,
// except that the virtual-node taint (kosmos.io/leaf) counts as tolerated
// for pods a DistributionPolicy sends to member clusters. Other pods stay
// off virtual nodes unless they tolerate the taint themselves.
//
// The policy a pod falls under is the one KosmosDistribution's PreFilter
// matched in the same cycle; only when that plugin is not in the profile
// does this one match the pod itself, from its own policy store (owned by
// the plugin instance, stopped on Close).
//
// The plugin has no args: New ignores any it is given.
//
// # Usage
//
//	registry := frameworkruntime.Registry{leaftaint.Name: leaftaint.New}
package leaftaint
