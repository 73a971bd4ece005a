// Package policies follows the DistributionPolicy objects of the host for
// the Kosmos scheduler plugins and matches pods to them.
//
// # Parsing
//
// Parse turns one DistributionPolicy into a Policy: a pure function over
// the object, with the selector compiled once and the split policy read.
// A policy that does not parse is logged (with its name and the reason) by
// the Store and ignored; the last version that parsed, if any, stays in
// effect until the object is fixed or deleted.
//
// # Ownership
//
// A Store belongs to the plugin instance that started it: there is no
// package-level registry of stores or framework handles. Each store runs
// its own informer on DistributionPolicies (small objects, one watch per
// plugin instance) and stops it on Close or when the scheduler's context
// ends. The scheduler closes plugins that implement io.Closer when it
// stops.
//
// # Usage
//
//	pols, err := policies.Start(ctx, h) // in the plugin's New
//	...
//	if pol := pols.Match(pod); pol != nil { ... }
//	...
//	pols.Close() // in the plugin's Close
package policies
