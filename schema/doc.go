// Package schema loads and validates KosmosTopology files and publishes their
// JSON schema. It never talks to a cluster.
//
// # Loading
//
// LoadFile reads one YAML document (at most 1 MiB), checks its structure
// against the Go types in v1alpha1 (unknown fields with a did-you-mean,
// credential-looking fields, values of the wrong kind), decodes it, applies
// v1alpha1.SetDefaults and runs Validate. A topology with any problem is
// rejected whole; the error is a Problems value listing every problem, sorted,
// each as
//
//	topology.yaml:14:9: spec.clusters[1].network.podCIDRs[0]: "10.0.0.0/33" is not a CIDR
//
// No message echoes a value that looks like a credential.
//
// Hostile input fails fast and small: before anything walks the parsed tree,
// the loader measures it with its aliases expanded (linear in the file) and
// refuses, at the offending node, a document over 100,000 nodes, nested deeper
// than 64 levels, or whose aliases add more than 10,000 nodes (bounds.go).
// Validation keeps at most 1,000 problems and counts the rest.
//
// # Validation
//
// Validate is pure: it takes a defaulted topology and returns problems with
// field paths and no positions, so the reconciler uses it as it is for
// topologies stored in a cluster. Its rules (names, exactly one host, CIDR
// syntax and families, overlaps between clusters unless both sides are mapped
// onto GlobalCIDRs, GlobalCIDR uniqueness and size, tunnel ranges, policy and
// service references) each have a failing case in testdata/invalid with the
// exact expected output in a .golden file.
//
// # JSON schema
//
// GenerateJSONSchema reflects the schema from the Go types, taking
// descriptions from doc comments, enums, patterns and ranges from the same
// +kubebuilder markers the CRD is generated from, and defaults from
// SetDefaults. The generated file is committed (kosmos-topology.schema.json)
// and embedded; `kosmos schema` prints it and `make verify` checks it is fresh.
//
// Usage:
//
//	topo, err := schema.LoadFile("topology.yaml")
//	var problems schema.Problems
//	if errors.As(err, &problems) {
//		// invalid: keep the last good state, report problems
//	}
package schema
