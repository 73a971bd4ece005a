package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// MaxFileSize is the largest topology file the loader reads: the most a
// ConfigMap holds, and far more than a topology of hundreds of clusters needs.
// Parsing costs about a hundred times the file's size in memory, so the limit
// also bounds what a hostile file can cost before its nodes are counted.
const MaxFileSize = 1 << 20

// LoadFile reads, decodes, defaults and validates the topology in path. A
// topology with problems is rejected whole: the error is a Problems listing
// every one, each with file:line:col and field path. Other errors (the file
// cannot be read) are returned as they are.
func LoadFile(path string) (*v1alpha1.KosmosTopology, error) {
	data, err := ReadTopologyFile(path)
	if err != nil {
		return nil, err
	}
	return Load(path, data)
}

// ReadTopologyFile reads a topology file of at most MaxFileSize bytes. A
// larger file is refused, after reading one byte past the limit, with
// Problems saying so (the same as Load says of such data).
func ReadTopologyFile(path string) ([]byte, error) {
	data, err := ReadFileLimit(path, MaxFileSize)
	if errors.Is(err, ErrTooLarge) {
		return nil, Problems{{File: path, Message: fmt.Sprintf("file is larger than %d MiB", MaxFileSize>>20)}}
	}
	return data, err
}

// ErrTooLarge says a file is over the limit of what its reader reads.
var ErrTooLarge = errors.New("file is too large")

// ReadFileLimit reads the file at path, refusing one of more than limit
// bytes with an error wrapping ErrTooLarge. It never reads more than limit+1
// bytes, whatever the file's size (a device or a sparse file included).
func ReadFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("read %s: more than %d bytes: %w", path, limit, ErrTooLarge)
	}
	return data, nil
}

// Load is LoadFile for data already in memory; name is the file name used in
// problem reports.
func Load(name string, data []byte) (*v1alpha1.KosmosTopology, error) {
	t, ps := load(data)
	if len(ps) == 0 {
		return t, nil
	}
	for i := range ps {
		ps[i].File = name
	}
	return nil, ps.sort()
}

func load(data []byte) (*v1alpha1.KosmosTopology, Problems) {
	if len(data) > MaxFileSize {
		return nil, Problems{{Message: fmt.Sprintf("file is larger than %d MiB", MaxFileSize>>20)}}
	}
	root, ps := parseOneDocument(data)
	if ps != nil {
		return nil, ps
	}
	if ps := checkBounds(root); ps != nil {
		return nil, ps
	}
	if ps := checkHeader(root); ps != nil {
		return nil, ps
	}
	st := &structure{pos: positions{}}
	st.walk(root, typeOfTopology, "")
	t, err := decode(root)
	if err != nil {
		return nil, append(st.problems, Problem{Line: root.Line, Col: root.Column, Message: err.Error()})
	}
	v1alpha1.SetDefaults(t)
	ps = st.problems
	for _, p := range Validate(t) {
		if st.underBad(p.Path) {
			continue
		}
		if pos, ok := st.pos.lookup(p.Path); ok {
			p.Line, p.Col = pos.line, pos.col
		}
		ps = append(ps, p)
	}
	return t, ps
}

var typeOfTopology = reflect.TypeFor[v1alpha1.KosmosTopology]()

// parseOneDocument parses data as exactly one YAML document and returns its
// root node.
func parseOneDocument(data []byte) (*yaml.Node, Problems) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Problems{{Message: "file is empty: expected one KosmosTopology document"}}
		}
		return nil, yamlProblems(err)
	}
	if len(doc.Content) == 0 {
		return nil, Problems{{Message: "file is empty: expected one KosmosTopology document"}}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, Problems{{Line: next.Line, Col: next.Column, Message: "a second YAML document: the topology is one document (split other objects into their own files)"}}
	case !errors.Is(err, io.EOF):
		return nil, yamlProblems(err)
	}
	return doc.Content[0], nil
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlProblems turns a YAML syntax error into problems with line numbers.
func yamlProblems(err error) Problems {
	var ps Problems
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l == "yaml: unmarshal errors:" {
			continue
		}
		if m := yamlLineRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			ps = append(ps, Problem{Line: n, Col: 1, Message: "invalid YAML: " + m[2]})
			continue
		}
		ps = append(ps, Problem{Message: "invalid YAML: " + strings.TrimPrefix(l, "yaml: ")})
	}
	return ps
}

// checkHeader verifies apiVersion and kind before anything else: a document of
// another kind would only produce noise further down.
func checkHeader(root *yaml.Node) Problems {
	if root.Kind != yaml.MappingNode {
		return Problems{{Line: root.Line, Col: root.Column, Message: "expected a KosmosTopology mapping, got " + describeNode(root)}}
	}
	want := map[string]string{"apiVersion": v1alpha1.APIVersion, "kind": v1alpha1.KindKosmosTopology}
	found := map[string]bool{}
	var ps Problems
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		w, ok := want[k.Value]
		if !ok {
			continue
		}
		found[k.Value] = true
		if v.Kind != yaml.ScalarNode || v.Value != w {
			ps = append(ps, Problem{Line: v.Line, Col: v.Column, Path: k.Value, Message: fmt.Sprintf("expected %q, got %s", w, describeNode(v))})
		}
	}
	for _, k := range []string{"apiVersion", "kind"} {
		if !found[k] {
			ps = append(ps, Problem{Line: root.Line, Col: root.Column, Path: k, Message: fmt.Sprintf("required: %s: %s", k, want[k])})
		}
	}
	return ps
}

// decode turns a structurally checked node tree into the Go type. It goes
// through JSON so that the types' JSON tags and decoders are the only mapping.
func decode(root *yaml.Node) (*v1alpha1.KosmosTopology, error) {
	var generic any
	if err := root.Decode(&generic); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	raw, err := json.Marshal(generic)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	var t v1alpha1.KosmosTopology
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return &t, nil
}
