package reconciler

import (
	"testing"

	"kosmos.io/kosmos/reconciler/inventory"
	"kosmos.io/kosmos/reconciler/mcs"
)

// TestGuardLeavesOutProbeObjects: the probe's imports in kosmos-probe
// neither count as deletions nor towards the total the guard compares
// with; everything else does.
func TestGuardLeavesOutProbeObjects(t *testing.T) {
	imp := func(name string) inventory.Entry {
		return inventory.Entry{APIVersion: "multicluster.x-k8s.io/v1alpha1", Kind: "ServiceImport", Namespace: ProbeNamespace, Name: name}
	}
	derived := inventory.Entry{APIVersion: "v1", Kind: "Service", Namespace: ProbeNamespace, Name: mcs.DerivedName("kosmos-probe-r-b")}
	node := inventory.Entry{APIVersion: "kosmos.io/v1alpha1", Kind: "NodeConfig", Name: "n1"}
	shop := inventory.Entry{APIVersion: "multicluster.x-k8s.io/v1alpha1", Kind: "ServiceImport", Namespace: "shop", Name: "web"}
	inv := inventory.Inventory{
		"a": {Objects: []inventory.Entry{node, shop, imp("kosmos-probe-r-b"), derived}},
		"b": {Objects: []inventory.Entry{node, imp("kosmos-probe-r-a")}},
	}
	for _, tc := range []struct {
		name      string
		dels      []inventory.Deletion
		want      int
		tripped   bool
		wantTotal int
	}{
		{"only probe objects: nothing for the guard", []inventory.Deletion{{Cluster: "a", Entry: imp("kosmos-probe-r-b")}, {Cluster: "a", Entry: derived}, {Cluster: "b", Entry: imp("kosmos-probe-r-a")}}, 0, false, 3},
		{"a user's import counts, against the objects outside kosmos-probe", []inventory.Deletion{{Cluster: "a", Entry: shop}, {Cluster: "b", Entry: imp("kosmos-probe-r-a")}}, 1, false, 3},
		{"most of the rest: tripped", []inventory.Deletion{{Cluster: "a", Entry: shop}, {Cluster: "a", Entry: node}, {Cluster: "b", Entry: imp("kosmos-probe-r-a")}}, 2, true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := guardVerdict(tc.dels, ownedEntries(inv), 0, "")
			if g.Deletions != tc.want || g.Total != tc.wantTotal {
				t.Errorf("%d deletions of %d, want %d of %d", g.Deletions, g.Total, tc.want, tc.wantTotal)
			}
			if g.Tripped != tc.tripped {
				t.Errorf("guard tripped %v, want %v (%+v)", g.Tripped, tc.tripped, g)
			}
		})
	}
}

// TestProbeObject: only the kinds the probe causes (ServiceImport,
// EndpointSlice, derived Service) with the probe's name forms, in
// kosmos-probe, are left out of the guard; any other object there, a
// non-probe name, another kind, is guarded like everywhere else.
func TestProbeObject(t *testing.T) {
	for _, c := range []struct {
		e    inventory.Entry
		want bool
	}{
		{inventory.Entry{APIVersion: "multicluster.x-k8s.io/v1alpha1", Kind: "ServiceImport", Namespace: ProbeNamespace, Name: "kosmos-probe-r1-a"}, true},
		{inventory.Entry{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice", Namespace: ProbeNamespace, Name: mcs.SliceName("kosmos-probe-r1-a", "a", "IPv4")}, true},
		{inventory.Entry{APIVersion: "v1", Kind: "Service", Namespace: ProbeNamespace, Name: mcs.DerivedName("kosmos-probe-r1-a")}, true},
		{inventory.Entry{APIVersion: "multicluster.x-k8s.io/v1alpha1", Kind: "ServiceImport", Namespace: ProbeNamespace, Name: "web"}, false},
		{inventory.Entry{APIVersion: "v1", Kind: "Service", Namespace: ProbeNamespace, Name: mcs.DerivedName("web")}, false},
		{inventory.Entry{APIVersion: "v1", Kind: "Service", Namespace: ProbeNamespace, Name: "kosmos-probe-r1-a"}, false},
		{inventory.Entry{APIVersion: "v1", Kind: "ConfigMap", Namespace: ProbeNamespace, Name: "kosmos-probe-r1-a"}, false},
		{inventory.Entry{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role", Namespace: ProbeNamespace, Name: "kosmos-probe-x"}, false},
		{inventory.Entry{APIVersion: "multicluster.x-k8s.io/v1alpha1", Kind: "ServiceImport", Namespace: "shop", Name: "kosmos-probe-r1-a"}, false},
	} {
		if got := probeObject(c.e); got != c.want {
			t.Errorf("%s: %v, want %v", c.e, got, c.want)
		}
	}
	// A non-probe name in kosmos-probe still trips the guard.
	web := inventory.Entry{APIVersion: "multicluster.x-k8s.io/v1alpha1", Kind: "ServiceImport", Namespace: ProbeNamespace, Name: "web"}
	if g := guardVerdict([]inventory.Deletion{{Cluster: "a", Entry: web}}, []inventory.Entry{web}, 0, ""); !g.Tripped || g.Deletions != 1 || g.Total != 1 {
		t.Errorf("deleting web in kosmos-probe: %+v, want the guard tripped (1 of 1)", g)
	}
}
