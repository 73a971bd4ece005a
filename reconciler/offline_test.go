package reconciler_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/reconciler/plan"
	"kosmos.io/kosmos/schema"
)

// TestOfflineDiffGuard: a pull request that truncates the topology to the
// host shows the deletion guard; one that removes a single member shows
// that member leaving, everything it held deleted, and no guard.
func TestOfflineDiffGuard(t *testing.T) {
	old, err := schema.LoadFile(filepath.Join("..", "topology.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("plan", "testdata", "example-facts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	facts, err := plan.LoadFacts(data)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)

	rep, err := reconciler.OfflineDiff(old, without(old, "member-c"), facts, now, 50)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Guard.Tripped {
		t.Errorf("removing one member tripped the guard: %+v", rep.Guard)
	}
	var leaving *reconciler.ClusterDiff
	for i := range rep.Clusters {
		if rep.Clusters[i].Cluster == "member-c" {
			leaving = &rep.Clusters[i]
		}
	}
	if leaving == nil || !leaving.Leaving || len(leaving.After) != 0 || len(leaving.Before) == 0 {
		t.Errorf("member-c leaving: %+v", leaving)
	}

	hostOnly := without(old, "member-a", "member-b", "member-c")
	hostOnly.Spec.DistributionPolicies, hostOnly.Spec.Services = nil, nil
	rep, err = reconciler.OfflineDiff(old, hostOnly, facts, now, 50)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Guard.Tripped || rep.Guard.Deletions*2 <= rep.Guard.Total {
		t.Errorf("truncating to the host did not trip the guard: %+v", rep.Guard)
	}
}
