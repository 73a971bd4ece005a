package schema

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/invopop/jsonschema"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// JSONSchemaFile is where the generated JSON schema is committed, relative to
// the module root; topology.example.yaml points editors at it.
const JSONSchemaFile = "schema/kosmos-topology.schema.json"

// JSONSchemaID identifies the schema document.
const JSONSchemaID = "https://kosmos.io/schemas/kosmos-topology.schema.json"

//go:embed kosmos-topology.schema.json
var jsonSchema []byte

// JSONSchema returns the committed JSON schema of a KosmosTopology file.
func JSONSchema() []byte { return jsonSchema }

// GenerateJSONSchema reflects the JSON schema of KosmosTopology from the Go
// types. moduleRoot is the directory holding go.mod: descriptions come from
// the doc comments in its schema/v1alpha1 sources, and the +kubebuilder
// validation markers in those comments (the ones the CRD is generated from)
// become enum, pattern and range keywords, so both schemas have one source.
// Defaults come from v1alpha1.SetDefaults itself.
func GenerateJSONSchema(moduleRoot string) ([]byte, error) {
	r := &jsonschema.Reflector{Mapper: mapType}
	if err := r.AddGoComments("kosmos.io/kosmos", moduleRoot+"/schema/v1alpha1", jsonschema.WithFullComment()); err != nil {
		return nil, fmt.Errorf("read doc comments: %w", err)
	}
	// The comment map is keyed by <moduleRoot>/schema/v1alpha1 joined to the
	// base; rekey it by the package path the reflector looks types up by.
	comments := map[string]string{}
	pkg := reflect.TypeFor[v1alpha1.KosmosTopology]().PkgPath()
	for k, v := range r.CommentMap {
		if i := strings.Index(k, "/schema/v1alpha1."); i >= 0 {
			k = pkg + k[i+len("/schema/v1alpha1"):]
		}
		comments[k] = v
	}
	markers := map[string][]string{}
	for k, v := range comments {
		comments[k], markers[k] = splitMarkers(v)
	}
	r.CommentMap = comments

	s := r.Reflect(&v1alpha1.KosmosTopology{})
	s.ID = JSONSchemaID
	s.Title = "KosmosTopology"
	root := s.Definitions["KosmosTopology"]
	for name, want := range map[string]string{"apiVersion": v1alpha1.APIVersion, "kind": v1alpha1.KindKosmosTopology} {
		if p, ok := root.Properties.Get(name); ok {
			p.Const = want
		}
	}
	root.Required = []string{"apiVersion", "kind", "metadata", "spec"}
	delete(s.Definitions, "TopologyStatus") // written by the reconciler, never by users
	root.Properties.Delete("status")
	for k := range s.Definitions {
		if k == "ClusterStatus" || k == "Condition" {
			delete(s.Definitions, k)
		}
	}

	applyMarkers(s.Definitions, reflect.TypeFor[v1alpha1.KosmosTopology](), markers, map[reflect.Type]bool{})
	applyDefaults(s.Definitions)
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// mapType gives Kubernetes metadata types the small schema a file needs.
func mapType(t reflect.Type) *jsonschema.Schema {
	strMap := &jsonschema.Schema{Type: "object", AdditionalProperties: &jsonschema.Schema{Type: "string"}}
	switch t {
	case reflect.TypeFor[metav1.ObjectMeta]():
		s := &jsonschema.Schema{Type: "object", Description: "Standard object metadata; name identifies the topology."}
		s.Properties = jsonschema.NewProperties()
		s.Properties.Set("name", &jsonschema.Schema{Type: "string", Description: "Name of the topology; labels every object Kosmos writes.", Pattern: `^[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$`})
		s.Properties.Set("namespace", &jsonschema.Schema{Type: "string", Description: "Namespace, when the topology is stored in a cluster."})
		s.Properties.Set("labels", strMap)
		s.Properties.Set("annotations", strMap)
		s.Required = []string{"name"}
		return s
	case reflect.TypeFor[metav1.Time]():
		return &jsonschema.Schema{Type: "string", Format: "date-time"}
	}
	return nil
}

// splitMarkers separates +marker lines from the prose of a doc comment.
func splitMarkers(comment string) (string, []string) {
	var prose, markers []string
	for _, l := range strings.Split(comment, "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "+") {
			markers = append(markers, t[1:])
		} else {
			prose = append(prose, l)
		}
	}
	return strings.TrimSpace(strings.Join(prose, "\n")), markers
}

// applyMarkers walks the Go types from t and applies each field's validation
// markers (and those of its named type) to the field's property schema.
func applyMarkers(defs jsonschema.Definitions, t reflect.Type, markers map[string][]string, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || t.PkgPath() != reflect.TypeFor[v1alpha1.KosmosTopology]().PkgPath() {
		return
	}
	seen[t] = true
	def := defs[t.Name()]
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if def != nil && name != "" {
			if prop, ok := def.Properties.Get(name); ok {
				ft := f.Type
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				var ms []string
				if ft.PkgPath() == t.PkgPath() {
					ms = append(ms, markers[ft.PkgPath()+"."+ft.Name()]...)
				}
				ms = append(ms, markers[t.PkgPath()+"."+t.Name()+"."+f.Name]...)
				target := prop
				if f.Type.Kind() == reflect.Slice && prop.Items != nil {
					applyMarkerList(prop, ms, true) // MinItems and friends belong to the list
					target = prop.Items
				}
				applyMarkerList(target, ms, false)
			}
		}
		applyMarkers(defs, f.Type, markers, seen)
	}
}

func applyMarkerList(s *jsonschema.Schema, markers []string, list bool) {
	for _, m := range markers {
		key, val, _ := strings.Cut(strings.TrimPrefix(m, "kubebuilder:validation:"), "=")
		if !strings.HasPrefix(m, "kubebuilder:validation:") {
			continue
		}
		u, _ := strconv.ParseUint(val, 10, 64)
		switch {
		case list && key == "MinItems":
			s.MinItems = &u
		case list:
		case key == "Enum":
			s.Enum = nil
			for _, e := range strings.Split(val, ";") {
				s.Enum = append(s.Enum, e)
			}
		case key == "Pattern":
			s.Pattern = strings.Trim(val, "`")
		case key == "MaxLength":
			s.MaxLength = &u
		case key == "MinLength":
			s.MinLength = &u
		case key == "Minimum":
			s.Minimum = json.Number(val)
		case key == "Maximum":
			s.Maximum = json.Number(val)
		}
	}
}

// applyDefaults records in the schema the values v1alpha1.SetDefaults fills
// in, read off by defaulting a minimal topology. A field whose default depends
// on the cluster's role (tree.enabled) gets none; its description says it.
func applyDefaults(defs jsonschema.Definitions) {
	sample := func(role v1alpha1.ClusterRole) map[string]any {
		t := v1alpha1.KosmosTopology{Spec: v1alpha1.TopologySpec{
			Clusters: []v1alpha1.ClusterSpec{{Role: role, Kubeconfig: v1alpha1.KubeconfigRef{SecretRef: &v1alpha1.SecretKeyRef{}}}},
			DistributionPolicies: []v1alpha1.DistributionPolicySpec{{
				Placement: v1alpha1.Placement{Spread: &v1alpha1.Spread{}},
			}},
		}}
		v1alpha1.SetDefaults(&t)
		raw, _ := json.Marshal(t)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return m
	}
	host, member := sample(v1alpha1.RoleHost), sample(v1alpha1.RoleMember)
	refs := map[string]int{}
	for _, d := range defs {
		countRefs(d, refs)
	}
	setDefaults(defs, refs, defs["KosmosTopology"], host, member)
}

func refName(s *jsonschema.Schema) string { return strings.TrimPrefix(s.Ref, "#/$defs/") }

// countRefs counts how often each definition is referenced below s.
func countRefs(s *jsonschema.Schema, refs map[string]int) {
	if s == nil {
		return
	}
	if s.Ref != "" {
		refs[refName(s)]++
	}
	countRefs(s.Items, refs)
	countRefs(s.AdditionalProperties, refs)
	if s.Properties != nil {
		for p := s.Properties.Oldest(); p != nil; p = p.Next() {
			countRefs(p.Value, refs)
		}
	}
}

func setDefaults(defs jsonschema.Definitions, refs map[string]int, s *jsonschema.Schema, a, b any) {
	if s == nil {
		return
	}
	if s.Ref != "" {
		if refs[refName(s)] > 1 {
			// A shared definition (VXLANDevice serves four devices) cannot
			// carry one default per field: the whole object's default goes on
			// the property that uses it.
			if av, ok := a.(map[string]any); ok && len(av) > 0 && reflect.DeepEqual(a, b) {
				s.Default = a
			}
			return
		}
		s = defs[refName(s)]
		if s == nil {
			return
		}
	}
	switch av := a.(type) {
	case map[string]any:
		bv, _ := b.(map[string]any)
		if s.Properties == nil {
			return
		}
		for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
			setDefaults(defs, refs, pair.Value, av[pair.Key], bv[pair.Key])
		}
	case []any:
		bv, _ := b.([]any)
		if len(av) > 0 && len(bv) > 0 && s.Items != nil {
			setDefaults(defs, refs, s.Items, av[0], bv[0])
		}
	case nil:
	default:
		if reflect.DeepEqual(a, b) && a != "" && a != float64(0) && a != false && s.Const == nil && s.Default == nil {
			s.Default = a
		}
	}
}
