package schema

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// position is a line and column in the source file, both 1-based.
type position struct{ line, col int }

// positions maps a field path (spec.clusters[1].name) to where its value
// starts; for map entries, where the key starts.
type positions map[string]position

// lookup returns the position of path, or of its nearest recorded ancestor
// (a missing field is reported where its parent is).
func (p positions) lookup(path string) (position, bool) {
	for path != "" {
		if pos, ok := p[path]; ok {
			return pos, true
		}
		path = parentPath(path)
	}
	pos, ok := p[""]
	return pos, ok
}

// parentPath strips the last element of a field path: a.b[2] → a.b → a → "".
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndex(path, "["); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndex(path, "."); i >= 0 {
		return path[:i]
	}
	return ""
}

// structure walks a YAML node tree along a Go type. It records the position of
// every field path and reports, at their positions, what the JSON decoder
// would otherwise report one at a time or not at all: unknown fields (with a
// did-you-mean), credential-looking fields, and values of the wrong kind.
type structure struct {
	pos      positions
	problems Problems
	// bad holds the paths of values of the wrong kind. Each such value is
	// replaced by null in the tree, so that the rest still decodes and is
	// validated; problems under a bad path are then only echoes.
	bad []string
}

// reject reports that the value at path has the wrong kind and nulls it.
func (s *structure) reject(n *yaml.Node, path, format string, args ...any) {
	s.errorAt(n, path, format, args...)
	s.bad = append(s.bad, path)
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null", Line: n.Line, Column: n.Column}
}

// underBad reports whether path is a rejected path or lies below one.
func (s *structure) underBad(path string) bool {
	for _, b := range s.bad {
		if path == b || strings.HasPrefix(path, b+".") || strings.HasPrefix(path, b+"[") {
			return true
		}
	}
	return false
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (s *structure) errorAt(n *yaml.Node, path, format string, args ...any) {
	s.problems = append(s.problems, Problem{Line: n.Line, Col: n.Column, Path: path, Message: fmt.Sprintf(format, args...)})
}

func (s *structure) walk(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, seen := s.pos[path]; !seen {
		s.pos[path] = position{n.Line, n.Column}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // null is the zero value of anything
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// Types that decode themselves (metav1.Time, resource.Quantity, ...) take
	// a scalar; their own decoder judges its content.
	if t.Kind() == reflect.Struct && (reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)) {
		s.expectKind(n, path, yaml.ScalarNode, "a "+t.Name())
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		s.walkStruct(n, t, path)
	case reflect.Map:
		s.walkMap(n, t, path)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 { // []byte is a base64 string
			s.expectScalar(n, path, "!!str", "a string")
			return
		}
		if !s.expectKind(n, path, yaml.SequenceNode, "a list") {
			return
		}
		for i, item := range n.Content {
			s.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.String:
		s.expectScalar(n, path, "!!str", "a string")
	case reflect.Bool:
		s.expectScalar(n, path, "!!bool", "true or false")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if s.expectScalar(n, path, "!!int", "a whole number") {
			s.checkRange(n, t, path)
		}
	case reflect.Float32, reflect.Float64:
		if n.Tag != "!!int" {
			s.expectScalar(n, path, "!!float", "a number")
		}
	}
}

// walkMap checks a mapping whose keys are strings and whose values are of
// t's element type.
func (s *structure) walkMap(n *yaml.Node, t reflect.Type, path string) {
	if !s.expectKind(n, path, yaml.MappingNode, "a mapping") {
		return
	}
	s.dropDuplicateKeys(n, path)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := fmt.Sprintf("%s[%s]", path, k.Value)
		if k.Kind != yaml.ScalarNode {
			s.reject(v, p, "expected a string key, got %s", describeNode(k))
			*k = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: fmt.Sprintf("<key %d>", i/2)}
			continue
		}
		k.Tag = "!!str" // a number or bool key is a string in JSON
		s.pos[p] = position{k.Line, k.Column}
		s.walk(v, t.Elem(), p)
	}
}

func (s *structure) checkRange(n *yaml.Node, t reflect.Type, path string) {
	v := reflect.New(t).Elem()
	digits := strings.ReplaceAll(n.Value, "_", "")
	if v.CanInt() {
		if i, err := strconv.ParseInt(digits, 0, 64); err == nil && !v.OverflowInt(i) {
			return
		}
	} else if u, err := strconv.ParseUint(digits, 0, 64); err == nil && !v.OverflowUint(u) {
		return
	}
	s.reject(n, path, "%s is out of range for a %d-bit %s", n.Value, t.Bits(), map[bool]string{true: "integer", false: "unsigned integer"}[v.CanInt()])
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!str":
		return fmt.Sprintf("the string %q", truncate(n.Value, 40))
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return n.Value
	}
	return fmt.Sprintf("%q", truncate(n.Value, 40))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (s *structure) expectKind(n *yaml.Node, path string, kind yaml.Kind, want string) bool {
	if n.Kind == kind {
		return true
	}
	s.reject(n, path, "expected %s, got %s", want, describeNode(n))
	return false
}

func (s *structure) expectScalar(n *yaml.Node, path, tag, want string) bool {
	if !s.expectKind(n, path, yaml.ScalarNode, want) {
		return false
	}
	if n.Tag == tag {
		return true
	}
	hint := ""
	if tag == "!!str" {
		hint = fmt.Sprintf(" (quote it: %q)", n.Value)
	}
	s.reject(n, path, "expected %s, got %s%s", want, describeNode(n), hint)
	return false
}

func (s *structure) walkStruct(n *yaml.Node, t reflect.Type, path string) {
	if !s.expectKind(n, path, yaml.MappingNode, "a mapping") {
		return
	}
	fields := jsonFields(t)
	s.dropDuplicateKeys(n, path)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := joinPath(path, k.Value)
		f, ok := fields[k.Value]
		if !ok {
			s.unknownField(k, p, fields)
			if k.Kind != yaml.ScalarNode {
				*k = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: fmt.Sprintf("<key %d>", i/2)}
			}
			k.Tag = "!!str" // a non-string key could not be decoded
			continue
		}
		s.pos[p] = position{k.Line, k.Column}
		s.walk(v, f, p)
	}
}

// dropDuplicateKeys reports every repeated key of a mapping and removes the
// repeats, so that the rest of the document still decodes.
func (s *structure) dropDuplicateKeys(n *yaml.Node, path string) {
	first := map[string]int{}
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if line, dup := first[k.Value]; dup && k.Kind == yaml.ScalarNode {
			s.errorAt(k, joinPath(path, k.Value), "duplicate key (first at line %d)", line)
			continue
		}
		first[k.Value] = k.Line
		kept = append(kept, n.Content[i], n.Content[i+1])
	}
	n.Content = kept
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// credentialWords are field names that carry secrets in kubeconfigs and
// elsewhere. The topology must never hold one, so such a field gets its own
// message, and its value is never echoed.
var credentialWords = []string{
	"token", "password", "passwd", "secret", "credential", "privatekey", "clientkey",
	"keydata", "certificatedata", "bearer", "apikey", "accesskey", "auth",
}

// looksLikeCredentialField reports whether a field name suggests a credential.
func looksLikeCredentialField(name string) bool {
	l := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(name))
	for _, w := range credentialWords {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

func (s *structure) unknownField(k *yaml.Node, path string, fields map[string]reflect.Type) {
	if looksLikeCredentialField(k.Value) {
		s.errorAt(k, path, "looks like a credential: the topology never holds credentials; reference a kubeconfig Secret (kubeconfig.secretRef) or a local context (kubeconfig.context)")
		return
	}
	known := make([]string, 0, len(fields))
	for name := range fields {
		known = append(known, name)
	}
	sort.Strings(known)
	msg := "unknown field"
	if best := closest(k.Value, known); best != "" {
		msg += fmt.Sprintf("; did you mean %q?", best)
	} else if len(known) <= 12 {
		msg += "; known fields: " + strings.Join(known, ", ")
	}
	s.errorAt(k, path, "%s", msg)
}

// jsonFields maps the JSON names of a struct's fields (following inline
// embedded structs) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && (opts == "inline" || strings.Contains(opts, "inline") || tag == "") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for n, t := range jsonFields(ft) {
				out[n] = t
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// closest returns the known name nearest to s (case-insensitive edit distance
// at most 2, or a case-only difference), or "" when none is close.
func closest(s string, known []string) string {
	best, bestD := "", 3
	ls := strings.ToLower(s)
	for _, k := range known {
		d := editDistance(ls, strings.ToLower(k))
		if d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
