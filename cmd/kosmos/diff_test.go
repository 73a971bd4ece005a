package main

import (
	"kosmos.io/kosmos/internal/testinfra/golden"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOfflineDiff compares the example with an edited copy over captured
// facts, with no cluster: the output is golden, the exit code 1.
func TestOfflineDiff(t *testing.T) {
	newFile := editedExample(t)
	code, out, errs := kosmos("diff", "--offline", "--facts", "../../reconciler/plan/testdata/example-facts.yaml", "--from", "../../topology.example.yaml", "-f", newFile)
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	golden.Assert(t, "testdata/diff-offline.golden", []byte(out))
	// Same topology on both sides: no changes, exit 0.
	code, out, _ = kosmos("diff", "--offline", "--facts", "../../reconciler/plan/testdata/example-facts.yaml", "--from", "../../topology.example.yaml", "-f", "../../topology.example.yaml")
	if code != 0 || strings.Count(out, "0 to create, 0 to change, 0 to delete") != 4 {
		t.Errorf("identical topologies: exit %d\n%s", code, out)
	}
	// Usage errors exit 2.
	if code, _, _ = kosmos("diff", "--offline", "-f", newFile); code != 2 {
		t.Errorf("missing --from/--facts: exit %d", code)
	}
}

// editedExample writes the example with a label and a weight changed, a
// policy and a service removed, and returns its path.
func editedExample(t *testing.T) string {
	t.Helper()
	example, err := os.ReadFile("../../topology.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(example), "tier: standard", "tier: gold", 1)
	edited = strings.Replace(edited, "- { name: member-a, weight: 2 }", "- { name: member-a, weight: 3 }", 1)
	edited = strings.Split(edited, "    # Two API replicas pinned")[0] + "\n  services:\n    - {namespace: shop, name: web}\n"
	newFile := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(newFile, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	return newFile
}

// TestRenderWithoutClusters: what topology.example.yaml's header tells a
// newcomer to run works with no cluster at all: the objects that need no
// facts are printed (every cluster's kosmos-dns ConfigMap among them), and
// stderr says what was left out and how to get it.
func TestRenderWithoutClusters(t *testing.T) {
	code, out, errs := kosmos("render", "-f", "../../topology.example.yaml", "--kubeconfig", filepath.Join(t.TempDir(), "none"))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	for _, c := range []string{"host", "member-a", "member-b", "member-c"} {
		if !strings.Contains(out, "# cluster: "+c+"\napiVersion: v1\ndata:\n  Corefile:") {
			t.Errorf("no kosmos-dns ConfigMap for %s", c)
		}
		if !strings.Contains(errs, "cluster "+c+" not observed") || !strings.Contains(out, "# cluster "+c+" not observed: left out its nodes") {
			t.Errorf("nothing says %s was left out:\n%s", c, errs)
		}
	}
	if !strings.Contains(out, "kind: DistributionPolicy") || !strings.Contains(errs, "kosmos facts -f ../../topology.example.yaml") {
		t.Errorf("render without clusters:\n%.2000s\n%s", out, errs)
	}
}
