package plan_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/testinfra/golden"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/reconciler/plan"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

var now = time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)

func example(t *testing.T) *v1alpha1.KosmosTopology {
	t.Helper()
	topo, err := schema.LoadFile(filepath.Join("..", "..", "topology.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func exampleFacts(t *testing.T) plan.Facts {
	t.Helper()
	data, err := os.ReadFile("testdata/example-facts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	facts, err := plan.LoadFacts(data)
	if err != nil {
		t.Fatal(err)
	}
	return facts
}

// TestRenderExample renders the whole plan of the example topology over
// captured facts: NodeConfigs, the host's objects, and the multi-cluster
// service objects (the kosmos-dns ConfigMap of every cluster, ServiceExports
// for spec.services, ServiceImports and EndpointSlices) in one golden file.
func TestRenderExample(t *testing.T) {
	p := plan.Compute(plan.Input{Topology: example(t), Facts: exampleFacts(t), Now: now})
	if len(p.Problems) > 0 {
		t.Fatalf("problems: %v", p.Problems)
	}
	kinds := map[string]map[string]int{}
	for _, c := range p.Clusters {
		if c.Unobserved != "" {
			t.Errorf("cluster %s: %s", c.Name, c.Unobserved)
		}
		kinds[c.Name] = map[string]int{}
		for _, o := range c.Objects {
			kinds[c.Name][o.GetObjectKind().GroupVersionKind().Kind]++
			if l := o.GetLabels(); l[v1alpha1.LabelManagedBy] != v1alpha1.ManagedBy || l[v1alpha1.LabelTopology] != "example" {
				t.Errorf("%s in %s lacks the ownership labels: %v", o.GetName(), c.Name, l)
			}
		}
	}
	for _, c := range []string{"host", "member-a", "member-b", "member-c"} {
		if kinds[c]["ConfigMap"] != 1 {
			t.Errorf("cluster %s: %d kosmos-dns ConfigMaps, want 1", c, kinds[c]["ConfigMap"])
		}
	}
	// spec.services: web from member-a and member-b, api wherever it is
	// (member-b); shop exists in member-a and member-b only.
	for c, want := range map[string]int{"member-a": 1, "member-b": 2} {
		if kinds[c]["ServiceExport"] != want {
			t.Errorf("cluster %s: %d ServiceExports, want %d", c, kinds[c]["ServiceExport"], want)
		}
		if kinds[c]["ServiceImport"] != 2 {
			t.Errorf("cluster %s: %d ServiceImports, want 2", c, kinds[c]["ServiceImport"])
		}
	}
	got, err := reconciler.Render(p, false)
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "testdata/example-render.golden.yaml", got)
}

// TestRenderWithoutFacts: with no facts at all, the plan holds what needs
// none (namespaces, the host's Cluster and DistributionPolicy objects, the
// kosmos-dns ConfigMaps) and says, per cluster, what it left out.
func TestRenderWithoutFacts(t *testing.T) {
	p := plan.Compute(plan.Input{Topology: example(t), Now: now})
	for _, c := range p.Clusters {
		if !strings.Contains(c.Unobserved, "its nodes") || !strings.Contains(c.Unobserved, "its services") {
			t.Errorf("cluster %s: unobserved %q", c.Name, c.Unobserved)
		}
		var kinds []string
		for _, o := range c.Objects {
			kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
		}
		got := strings.Join(kinds, ",")
		want := "ConfigMap,Namespace"
		if c.Name == "host" {
			want = "Cluster,Cluster,Cluster,ConfigMap,DistributionPolicy,DistributionPolicy,Namespace"
		}
		if got != want {
			t.Errorf("cluster %s: kinds %s, want %s", c.Name, got, want)
		}
	}
	got, err := reconciler.Render(p, false)
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "testdata/example-nofacts.golden.yaml", got)
}

// TestOldFactsFilesLoad: a facts file of network facts only (as written
// before services were captured) still loads; its services are unobserved.
func TestOldFactsFilesLoad(t *testing.T) {
	facts, err := plan.LoadFacts([]byte("a:\n  nodes:\n    - {name: n1, internalIPs: [192.168.1.1], podCIDRs: [10.0.1.0/24], ready: true}\n  gateway: n1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(facts["a"].Nodes) != 1 || facts["a"].Gateway != "n1" || facts["a"].Services != nil {
		t.Errorf("facts: %+v", facts["a"])
	}
	if _, err := plan.LoadFacts([]byte("a:\n  nodez: []\n")); err == nil {
		t.Error("an unknown field was accepted")
	}
}
