package reconciler

import (
	"context"
	"fmt"

	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// ClusterDiff is one cluster's objects as they are (Before) and as
// applying the topology would leave them (After), both normalised.
type ClusterDiff struct {
	Cluster       string
	Before, After Objects
}

// LiveDiff observes the clusters, computes what t wants in each and asks
// each API server (server-side dry run) what an apply would leave: the
// input of `kosmos diff` and of the sandbox's first preview.
func LiveDiff(ctx context.Context, t *v1alpha1.KosmosTopology, clusters []Cluster) ([]ClusterDiff, error) {
	facts, err := ObserveAll(ctx, clusters)
	if err != nil {
		return nil, err
	}
	st := desired.Compute(t, facts)
	var out []ClusterDiff
	for i, co := range st.Clusters {
		before, after, err := LiveObjects(ctx, clusters[i].Client, t.Name, co.Objects)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", co.Cluster, err)
		}
		out = append(out, ClusterDiff{Cluster: co.Cluster, Before: before, After: after})
	}
	return out, nil
}

// Changes lists every change of the diffs, cluster by cluster.
func Changes(diffs []ClusterDiff) []Change {
	var out []Change
	for _, d := range diffs {
		out = append(out, Diff(d.Cluster, d.Before, d.After)...)
	}
	return out
}
