package desired_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden render")

// TestRenderExample renders the example topology over captured facts and
// compares it with the golden file; every object carries both ownership
// labels.
func TestRenderExample(t *testing.T) {
	topo, err := schema.LoadFile(filepath.Join("..", "..", "topology.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("testdata/example-facts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	facts, err := reconciler.LoadFacts(data)
	if err != nil {
		t.Fatal(err)
	}
	st := desired.Compute(topo, facts)
	if len(st.Problems) > 0 {
		t.Fatalf("problems: %v", st.Problems)
	}
	for _, co := range st.Clusters {
		for _, o := range co.Objects {
			if l := o.GetLabels(); l[desired.LabelManagedBy] != "kosmos" || l[desired.LabelTopology] != "example" {
				t.Errorf("%s/%s in %s lacks the ownership labels: %v", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), co.Cluster, l)
			}
		}
	}
	// The gateway in force (member-b-n2, not the first by name) is kept.
	var gw []client.Object
	for _, o := range st.Clusters[2].Objects {
		if o.GetLabels()[desired.LabelRole] == desired.RoleGateway {
			gw = append(gw, o)
		}
	}
	if len(gw) != 1 || gw[0].GetName() != "member-b-n2" {
		t.Errorf("gateway in force not kept: %v", gw)
	}
	got, err := reconciler.Render(st, false)
	if err != nil {
		t.Fatal(err)
	}
	golden := "testdata/example-render.golden.yaml"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("render differs from %s (go test ./reconciler/desired -update, then review)", golden)
	}
}

// TestFactsSkipVirtualNodes: the tree's virtual nodes are member clusters,
// not machines: no NodeConfig is planned for them.
func TestFactsSkipVirtualNodes(t *testing.T) {
	nodes := []corev1.Node{
		{ObjectMeta: metav1.ObjectMeta{Name: "host-n1"}, Spec: corev1.NodeSpec{PodCIDR: "10.10.1.0/24"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "kosmos-member-a", Labels: map[string]string{desired.LabelManagedBy: v1alpha1.ManagedByTree}}},
	}
	f := desired.FactsOf(nodes, nil)
	if len(f.Nodes) != 1 || f.Nodes[0].Name != "host-n1" {
		t.Errorf("facts: %+v", f.Nodes)
	}
}
