// Package split decides, as pure functions over plain data, how many
// replicas of a workload each cluster should hold under a distribution
// policy, and which clusters may take the next replica.
//
// # Usage
//
//	p := split.FromObject(distributionPolicy)
//	want := p.Want(10)                 // replicas per cluster
//	d := p.Next(10, placedPerCluster)  // where the next replica may go
//	if d.Allowed["eu"] { ... } else { reason := d.Why["eu"] }
//
// The scheduler's KosmosDistribution plugin calls Next once per pod; the
// tests here are tables over plain data.
package split
