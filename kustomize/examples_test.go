package kustomize_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"

	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/reconciler/plan"
	"kosmos.io/kosmos/schema"
)

// readDocs reads every YAML document of a file.
func readDocs(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	d := k8syaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := d.Decode(&u.Object); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// overlayOf maps a repository path as the examples write it
// ("./kustomize/overlays/host" or "kustomize/overlays/host") to the overlay
// directory in this folder, failing when it is not one of the overlays.
func overlayOf(t *testing.T, where, p string) string {
	t.Helper()
	dir := strings.TrimPrefix(strings.TrimPrefix(p, "./"), "kustomize/")
	if !slices.Contains(overlays, dir) {
		t.Errorf("%s: path %q is not one of the overlays %v", where, p, overlays)
	}
	return dir
}

// TestExamplesPointAtOverlays checks the Argo CD and Flux examples against
// the overlays they deploy: every path is an overlay, Argo CD applies
// server-side and knows the KosmosTopology's health, and every Flux health
// check names an object the overlay really yields, the KosmosTopology among
// them.
func TestExamplesPointAtOverlays(t *testing.T) {
	health := false
	for _, u := range readDocs(t, "examples/argocd-application.yaml") {
		switch u.GetKind() {
		case "Application":
			p, _, _ := unstructured.NestedString(u.Object, "spec", "source", "path")
			overlayOf(t, "Application "+u.GetName(), p)
			opts, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "syncPolicy", "syncOptions")
			if !slices.Contains(opts, "ServerSideApply=true") {
				t.Errorf("Application %s: no ServerSideApply=true", u.GetName())
			}
		case "ConfigMap":
			lua, _, _ := unstructured.NestedString(u.Object, "data", "resource.customizations.health.kosmos.io_KosmosTopology")
			health = strings.Contains(lua, `"Ready"`) && strings.Contains(lua, `"Stalled"`)
		}
	}
	if !health {
		t.Error("argocd-cm example: no KosmosTopology health check on Ready and Stalled")
	}

	topologyChecked := false
	for _, u := range readDocs(t, "examples/flux-kustomization.yaml") {
		if u.GetKind() != "Kustomization" {
			continue
		}
		p, _, _ := unstructured.NestedString(u.Object, "spec", "path")
		dir := overlayOf(t, "Kustomization "+u.GetName(), p)
		built := map[string]bool{}
		for _, o := range build(t, dir) {
			built[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] = true
		}
		checks, _, _ := unstructured.NestedSlice(u.Object, "spec", "healthChecks")
		for _, c := range checks {
			m := c.(map[string]any)
			key := m["kind"].(string) + "/" + m["namespace"].(string) + "/" + m["name"].(string)
			if !built[key] {
				t.Errorf("Kustomization %s: health check %s is not in %s", u.GetName(), key, dir)
			}
			topologyChecked = topologyChecked || m["kind"] == "KosmosTopology"
		}
	}
	if !topologyChecked {
		t.Error("flux example: no health check on the KosmosTopology")
	}
}

// TestCIExample checks that the files the CI workflows (GitHub Actions and
// GitLab CI) read exist, that both post the Markdown preview, and that the
// committed facts plan the host overlay's topology without a problem, so
// `kosmos diff --offline` in CI shows real NodeConfigs.
func TestCIExample(t *testing.T) {
	for file, posts := range map[string]string{
		"github-actions.yaml": "gh pr comment",
		"gitlab-ci.yaml":      "merge_requests/$CI_MERGE_REQUEST_IID/notes",
	} {
		checkCIFile(t, "examples/ci/"+file, posts)
	}

	topo, err := schema.LoadFile("overlays/host/topology.yaml")
	if err != nil {
		t.Fatalf("overlays/host/topology.yaml: %v", err)
	}
	data, err := os.ReadFile("overlays/host/facts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	facts, err := plan.LoadFacts(data)
	if err != nil {
		t.Fatalf("overlays/host/facts.yaml: %v", err)
	}
	for _, c := range topo.Spec.Clusters {
		if len(facts[c.Name].Nodes) == 0 {
			t.Errorf("facts.yaml: no nodes for cluster %s", c.Name)
		}
	}
	st := desired.Compute(topo, facts.Network())
	if len(st.Problems) > 0 {
		t.Errorf("planning the host topology over facts.yaml: %v", st.Problems)
	}
	nodeConfigs := 0
	for _, co := range st.Clusters {
		for _, o := range co.Objects {
			if o.GetObjectKind().GroupVersionKind().Kind == "NodeConfig" {
				nodeConfigs++
			}
		}
	}
	if nodeConfigs != 4 {
		t.Errorf("planned %d NodeConfigs over facts.yaml, want 4 (one per node)", nodeConfigs)
	}
}

// checkCIFile: one YAML document that validates, diffs offline, renders the
// Markdown preview and posts it (posts: how it reaches the pull request),
// and reads only files of kustomize/ that exist.
func checkCIFile(t *testing.T, path, posts string) {
	t.Helper()
	if docs := readDocs(t, path); len(docs) != 1 {
		t.Fatalf("%s: %d documents, want 1", path, len(docs))
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kosmos validate", "kosmos diff --offline", "-o markdown > out/diff.md", "out/diff.md", posts} {
		if !strings.Contains(strings.ReplaceAll(string(raw), "bin/kosmos", "kosmos"), want) {
			t.Errorf("%s does not run %q", path, want)
		}
	}
	paths := regexp.MustCompile(`kustomize/[A-Za-z0-9_./-]+\.yaml`).FindAllString(string(raw), -1)
	if len(paths) == 0 {
		t.Fatalf("%s names no file of kustomize/", path)
	}
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join("..", p)); err != nil {
			t.Errorf("%s reads %s: %v", path, p, err)
		}
	}
}
