package reconciler

import (
	"testing"

	"kosmos.io/kosmos/reconciler/inventory"
)

// TestGuardLeavesOutProbeObjects: the probe's imports in kosmos-probe
// neither count as deletions nor towards the total the guard compares
// with; everything else does.
func TestGuardLeavesOutProbeObjects(t *testing.T) {
	probe := func(kind, name string) inventory.Entry {
		return inventory.Entry{APIVersion: "v1", Kind: kind, Namespace: ProbeNamespace, Name: name}
	}
	node := inventory.Entry{APIVersion: "kosmos.io/v1alpha1", Kind: "NodeConfig", Name: "n1"}
	shop := inventory.Entry{APIVersion: "multicluster.x-k8s.io/v1alpha1", Kind: "ServiceImport", Namespace: "shop", Name: "web"}
	inv := inventory.Inventory{
		"a": {Objects: []inventory.Entry{node, shop, probe("ServiceImport", "kosmos-probe-r-b"), probe("Service", "kosmos-kosmos-probe-r-b-1234abcd")}},
		"b": {Objects: []inventory.Entry{node, probe("ServiceImport", "kosmos-probe-r-a")}},
	}
	for _, tc := range []struct {
		name      string
		dels      []inventory.Deletion
		want      int
		tripped   bool
		wantTotal int
	}{
		{"only probe objects: nothing for the guard", []inventory.Deletion{{Cluster: "a", Entry: probe("ServiceImport", "kosmos-probe-r-b")}, {Cluster: "a", Entry: probe("Service", "kosmos-kosmos-probe-r-b-1234abcd")}, {Cluster: "b", Entry: probe("ServiceImport", "kosmos-probe-r-a")}}, 0, false, 3},
		{"a user's import counts, against the objects outside kosmos-probe", []inventory.Deletion{{Cluster: "a", Entry: shop}, {Cluster: "b", Entry: probe("ServiceImport", "kosmos-probe-r-a")}}, 1, false, 3},
		{"most of the rest: tripped", []inventory.Deletion{{Cluster: "a", Entry: shop}, {Cluster: "a", Entry: node}, {Cluster: "b", Entry: probe("ServiceImport", "kosmos-probe-r-a")}}, 2, true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, total := guardedDeletions(tc.dels, inv)
			if len(got) != tc.want || total != tc.wantTotal {
				t.Errorf("%d deletions of %d, want %d of %d", len(got), total, tc.want, tc.wantTotal)
			}
			if g := inventory.Check(got, total, 0, ""); g.Tripped != tc.tripped {
				t.Errorf("guard tripped %v, want %v (%+v)", g.Tripped, tc.tripped, g)
			}
		})
	}
}
