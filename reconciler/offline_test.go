package reconciler_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/reconciler/inventory"
	"kosmos.io/kosmos/reconciler/mcs"
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

// TestOfflineDiffGuardLeavesOutProbe: the offline preview judges deletions
// as apply does (the probe's objects in kosmos-probe left out): a member
// leaving while a `kosmos check --probe --services` export of it is
// imported everywhere gets the same verdict and confirm token as without
// that export.
func TestOfflineDiffGuardLeavesOutProbe(t *testing.T) {
	old, err := schema.LoadFile(filepath.Join("..", "topology.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("plan", "testdata", "example-facts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	guard := func(withProbe bool) (inventory.Guard, int) {
		facts, err := plan.LoadFacts(data)
		if err != nil {
			t.Fatal(err)
		}
		for name, cf := range facts {
			cf.Services.Namespaces = append(cf.Services.Namespaces, reconciler.ProbeNamespace)
			if name == "member-c" && withProbe {
				svc := "kosmos-probe-r1-member-c"
				cf.Services.Exports = append(cf.Services.Exports, mcs.Export{Namespace: reconciler.ProbeNamespace, Name: svc, Created: now.Add(-time.Minute)})
				cf.Services.Services = append(cf.Services.Services, mcs.Service{Namespace: reconciler.ProbeNamespace, Name: svc, ClusterIPs: []string{"10.96.0.30"},
					Ports: []mcsv1a1.ServicePort{{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 8080}},
					Slices: []discoveryv1.EndpointSlice{{AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: ptr("tcp"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8080))}},
						Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.30.1.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}}}}})
			}
			facts[name] = cf
		}
		rep, err := reconciler.OfflineDiff(old, without(old, "member-c"), facts, now, 50)
		if err != nil {
			t.Fatal(err)
		}
		probeObjects := 0
		for _, c := range rep.Clusters {
			for key := range c.Before {
				if strings.Contains(key, "/"+reconciler.ProbeNamespace+"/") {
					probeObjects++
				}
			}
		}
		return rep.Guard, probeObjects
	}
	plain, n := guard(false)
	if n != 0 {
		t.Fatalf("%d probe objects planned without the probe's export", n)
	}
	probed, n := guard(true)
	t.Logf("guard without the probe %+v; with it (%d probe objects planned) %+v", plain, n, probed)
	if n == 0 {
		t.Fatal("the probe's export planned no imports: the test shows nothing")
	}
	if probed != plain {
		t.Errorf("the probe's objects changed the preview's guard: %+v, want %+v (as apply judges)", probed, plain)
	}
}
