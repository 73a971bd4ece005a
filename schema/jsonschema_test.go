package schema

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	js "github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

// TestJSONSchemaIsFresh fails when the committed schema differs from what
// the Go types generate (run make generate).
func TestJSONSchemaIsFresh(t *testing.T) {
	got, err := GenerateJSONSchema("..")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, JSONSchema()) {
		t.Fatalf("%s is stale: run `make generate`", JSONSchemaFile)
	}
}

func compileSchema(t *testing.T) *js.Schema {
	t.Helper()
	doc, err := js.UnmarshalJSON(bytes.NewReader(JSONSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := js.NewCompiler()
	if err := c.AddResource(JSONSchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(JSONSchemaID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func instance(t *testing.T, file string) any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	v, err := js.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestJSONSchemaAcceptsValidTopologies checks that editors using the schema
// accept every topology the loader accepts, and flag what it must.
func TestJSONSchemaAcceptsValidTopologies(t *testing.T) {
	s := compileSchema(t)
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	files = append(files, filepath.Join("..", "topology.example.yaml"))
	for _, f := range files {
		if err := s.Validate(instance(t, f)); err != nil {
			t.Errorf("%s: the JSON schema rejects a valid topology: %v", f, err)
		}
	}
	for _, name := range []string{"role-invalid", "unknown-field", "network-options", "wrong-apiversion-kind", "policy-spread-invalid"} {
		err := s.Validate(instance(t, filepath.Join("testdata", "invalid", name+".yaml")))
		if err == nil {
			t.Errorf("%s: the JSON schema accepts it", name)
		}
	}
}

func TestExamplePointsAtSchema(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "topology.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	if first != "# yaml-language-server: $schema=./"+JSONSchemaFile {
		t.Errorf("first line of topology.example.yaml is %q", first)
	}
}
