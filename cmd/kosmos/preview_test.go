package main

import (
	"os"
	"strings"
	"testing"

	"kosmos.io/kosmos/internal/testinfra/golden"
)

const exampleFacts = "../../reconciler/plan/testdata/example-facts.yaml"

// TestOfflineDiffMarkdown: -o markdown prints the pull request comment for
// the same change TestOfflineDiff shows as YAML (golden), with diff's exit
// codes: 1 for changes, 0 for none, 2 for an unknown format.
func TestOfflineDiffMarkdown(t *testing.T) {
	newFile := editedExample(t)
	code, out, errs := kosmos("diff", "--offline", "--facts", exampleFacts, "--from", "../../topology.example.yaml", "-f", newFile, "-o", "markdown")
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	golden.Assert(t, "testdata/diff-offline.md", []byte(out))
	code, out, _ = kosmos("diff", "--offline", "--facts", exampleFacts, "--from", "../../topology.example.yaml", "-f", "../../topology.example.yaml", "-o", "markdown")
	if code != 0 || !strings.Contains(out, "**0 change(s)**") {
		t.Errorf("identical topologies: exit %d\n%s", code, out)
	}
	if code, _, errs = kosmos("diff", "--offline", "--facts", exampleFacts, "--from", newFile, "-f", newFile, "-o", "yaml"); code != 2 || !strings.Contains(errs, "want text or markdown") {
		t.Errorf("-o yaml: exit %d, %s", code, errs)
	}
}

// TestGraph: kosmos graph prints what the preview package draws for the
// example (its golden files), in both languages; svg and a missing file
// are usage errors.
func TestGraph(t *testing.T) {
	for format, path := range map[string]string{"mermaid": "example.mmd", "dot": "example.dot"} {
		want, err := os.ReadFile("../../reconciler/preview/testdata/" + path)
		if err != nil {
			t.Fatal(err)
		}
		code, out, errs := kosmos("graph", "-f", "../../topology.example.yaml", "-o", format)
		if code != 0 || out != string(want) {
			t.Errorf("-o %s: exit %d, %s\n%s", format, code, errs, out)
		}
	}
	if code, _, errs := kosmos("graph", "-f", "../../topology.example.yaml", "-o", "svg"); code != 2 || !strings.Contains(errs, "dot -Tsvg") {
		t.Errorf("-o svg: exit %d, %s", code, errs)
	}
	if code, _, _ := kosmos("graph"); code != 2 {
		t.Errorf("no file: exit %d", code)
	}
	if code, out, _ := kosmos("graph", "--help"); code != 0 || !strings.Contains(out, "SVG is not drawn here") || !strings.Contains(out, "kosmos graph -f topology.yaml") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
}
