package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestOfflineDiff compares the example with an edited copy over captured
// facts, with no cluster: the output is golden, the exit code 1.
func TestOfflineDiff(t *testing.T) {
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
	code, out, errs := kosmos("diff", "--offline", "--facts", "../../reconciler/plan/testdata/example-facts.yaml", "--from", "../../topology.example.yaml", "-f", newFile)
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	golden := "testdata/diff-offline.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("offline diff differs from %s:\n%s", golden, out)
	}
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
