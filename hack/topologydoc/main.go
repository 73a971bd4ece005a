// Command topologydoc writes docs/topology.md, the reference of the
// KosmosTopology file, from the generated JSON schema (so the reference,
// the schema and the Go types never disagree). Run it from the module root
// after jsonschema (make generate does).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"kosmos.io/kosmos/schema"
)

// DocFile is where the reference is written.
const DocFile = "docs/topology.md"

type node struct {
	Ref                  string           `json:"$ref"`
	Type                 string           `json:"type"`
	Description          string           `json:"description"`
	Properties           map[string]*node `json:"properties"`
	Required             []string         `json:"required"`
	Items                *node            `json:"items"`
	AdditionalProperties json.RawMessage  `json:"additionalProperties"` // a schema, or false
	Enum                 []any            `json:"enum"`
	Const                any              `json:"const"`
	Default              any              `json:"default"`
	Pattern              string           `json:"pattern"`
	Minimum              *float64         `json:"minimum"`
	Maximum              *float64         `json:"maximum"`
	MinItems             *int             `json:"minItems"`
	MaxItems             *int             `json:"maxItems"`
}

type doc struct {
	Ref  string           `json:"$ref"`
	Defs map[string]*node `json:"$defs"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "topologydoc:", err)
		os.Exit(1)
	}
}

func run() error {
	raw, err := os.ReadFile(schema.JSONSchemaFile)
	if err != nil {
		return err
	}
	var d doc
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("%s: %w", schema.JSONSchemaFile, err)
	}
	var b strings.Builder
	b.WriteString(`# KosmosTopology reference

Generated from ` + "`" + schema.JSONSchemaFile + "`" + ` (itself generated from the Go types in
` + "`schema/v1alpha1`" + `) by ` + "`make generate`" + `; do not edit. Every field of the file, with its type,
whether it is required, its default and its constraints. ` + "`[]`" + ` marks a list item, ` + "`{key}`" + ` a map value.

| field | type | required | default | description |
|---|---|---|---|---|
`)
	root := d.resolve(&node{Ref: d.Ref})
	d.walk(&b, "", root, map[string]bool{})
	if err := os.MkdirAll("docs", 0o755); err != nil {
		return err
	}
	return os.WriteFile(DocFile, []byte(b.String()), 0o644)
}

// values is the schema of a map's values, or nil (not a map, or
// additionalProperties: false).
func (n *node) values() *node {
	if len(n.AdditionalProperties) == 0 || n.AdditionalProperties[0] != '{' {
		return nil
	}
	var v node
	if json.Unmarshal(n.AdditionalProperties, &v) != nil {
		return nil
	}
	return &v
}

func (d doc) resolve(n *node) *node {
	for n != nil && n.Ref != "" {
		n = d.Defs[strings.TrimPrefix(n.Ref, "#/$defs/")]
	}
	return n
}

// walk writes a row per field under path, depth first, fields sorted.
func (d doc) walk(b *strings.Builder, path string, n *node, seen map[string]bool) {
	names := make([]string, 0, len(n.Properties))
	for k := range n.Properties {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		raw := n.Properties[k]
		f := d.resolve(raw)
		p := join(path, k)
		d.row(b, p, raw, f, slices.Contains(n.Required, k))
		d.descend(b, p, raw, f, seen)
	}
}

func (d doc) descend(b *strings.Builder, p string, raw, f *node, seen map[string]bool) {
	key := raw.Ref
	if key != "" {
		if seen[key] {
			return // a type already described above this field
		}
		seen = cloneWith(seen, key)
	}
	switch {
	case len(f.Properties) > 0:
		d.walk(b, p, f, seen)
	case f.Items != nil:
		it := d.resolve(f.Items)
		if len(it.Properties) > 0 {
			d.walk(b, p+"[]", it, seen)
		}
	case f.values() != nil:
		v := d.resolve(f.values())
		if len(v.Properties) > 0 {
			d.walk(b, p+".{key}", v, seen)
		}
	}
}

func cloneWith(m map[string]bool, k string) map[string]bool {
	out := make(map[string]bool, len(m)+1)
	for key := range m {
		out[key] = true
	}
	out[k] = true
	return out
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func (d doc) row(b *strings.Builder, path string, raw, f *node, required bool) {
	desc := cmpOr(raw.Description, f.Description)
	var cons []string
	if f.Const != nil {
		cons = append(cons, fmt.Sprintf("must be `%v`", f.Const))
	}
	if len(f.Enum) > 0 {
		var vs []string
		for _, v := range f.Enum {
			vs = append(vs, fmt.Sprintf("`%v`", v))
		}
		cons = append(cons, "one of "+strings.Join(vs, ", "))
	}
	if f.Pattern != "" {
		cons = append(cons, "pattern `"+f.Pattern+"`")
	}
	if f.Minimum != nil {
		cons = append(cons, fmt.Sprintf("≥ %v", *f.Minimum))
	}
	if f.Maximum != nil {
		cons = append(cons, fmt.Sprintf("≤ %v", *f.Maximum))
	}
	if f.MinItems != nil {
		cons = append(cons, fmt.Sprintf("at least %d item(s)", *f.MinItems))
	}
	if f.MaxItems != nil {
		cons = append(cons, fmt.Sprintf("at most %d item(s)", *f.MaxItems))
	}
	if len(cons) > 0 {
		desc = strings.TrimSpace(desc + " (" + strings.Join(cons, "; ") + ")")
	}
	def := ""
	if v := cmpAny(raw.Default, f.Default); v != nil {
		j, _ := json.Marshal(v)
		def = "`" + string(j) + "`"
	}
	req := ""
	if required {
		req = "yes"
	}
	fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s |\n", path, d.typeOf(f), req, def, cell(desc))
}

func (d doc) typeOf(f *node) string {
	switch {
	case f.Items != nil:
		return "[]" + d.typeOf(d.resolve(f.Items))
	case f.values() != nil:
		return "map[string]" + d.typeOf(d.resolve(f.values()))
	case f.Type != "":
		return f.Type
	case len(f.Properties) > 0:
		return "object"
	}
	return "any"
}

func cell(s string) string {
	return strings.NewReplacer("\n", " ", "|", "\\|").Replace(s)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func cmpAny(a, b any) any {
	if a != nil {
		return a
	}
	return b
}
