package reconciler

// The pure diff: two states of a cluster as plain maps, compared. Reading
// the live side is in livediff.go, printing in unified.go.

import (
	"fmt"
	"maps"
	"reflect"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/reconciler/apply"
)

// Change is one object that differs between two states of a cluster.
type Change struct {
	Cluster string
	// Key is Kind/name.
	Key string
	// Action is create, update or delete.
	Action string
	// Old and New are the object as YAML ("" when absent).
	Old, New string
}

// Objects are the objects of one cluster as plain maps, by Kind/name.
type Objects map[string]map[string]any

// DesiredObjects turns a cluster's desired objects into Objects, exactly as
// they would be applied.
func DesiredObjects(objs []client.Object) (Objects, error) {
	out := Objects{}
	for _, o := range objs {
		m, err := apply.Clean(o)
		if err != nil {
			return nil, err
		}
		out[apply.KeyOf(o)] = Normalize(m)
	}
	return out, nil
}

// serverFields are metadata the server manages; a diff hides them.
var serverFields = []string{"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"}

// Normalize strips what a diff must not show: status, server-managed
// metadata, Kosmos' own bookkeeping annotation, and Secret values.
func Normalize(m map[string]any) map[string]any {
	m = deepCopy(m)
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		for _, f := range serverFields {
			delete(md, f)
		}
		if ann, ok := md["annotations"].(map[string]any); ok {
			delete(ann, apply.AnnotationHash)
			if len(ann) == 0 {
				delete(md, "annotations")
			}
		}
	}
	if m["kind"] == "Secret" {
		for _, f := range []string{"data", "stringData"} {
			if d, ok := m[f].(map[string]any); ok {
				for k := range d {
					d[k] = "(redacted)"
				}
			}
		}
	}
	return m
}

func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case map[string]any:
			out[k] = deepCopy(x)
		case []any:
			l := make([]any, len(x))
			for i, e := range x {
				if em, ok := e.(map[string]any); ok {
					l[i] = deepCopy(em)
				} else {
					l[i] = e
				}
			}
			out[k] = l
		default:
			out[k] = v
		}
	}
	return out
}

// Diff compares two states of one cluster. It is pure.
func Diff(cluster string, before, after Objects) []Change {
	var out []Change
	keys := slices.Sorted(maps.Keys(after))
	for k := range before {
		if _, ok := after[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		b, hadB := before[k]
		a, hasA := after[k]
		c := Change{Cluster: cluster, Key: k}
		switch {
		case !hadB:
			c.Action, c.New = "create", toYAML(a)
		case !hasA:
			c.Action, c.Old = "delete", toYAML(b)
		case reflect.DeepEqual(jsonish(b), jsonish(a)):
			continue
		default:
			c.Action, c.Old, c.New = "update", toYAML(b), toYAML(a)
		}
		out = append(out, c)
	}
	return out
}

// jsonish gives numbers one representation so that int64 and float64 from
// two sources compare equal.
func jsonish(m map[string]any) any {
	y, _ := yaml.Marshal(m)
	var v any
	_ = yaml.Unmarshal(y, &v)
	return v
}

func toYAML(m map[string]any) string {
	y, err := yaml.Marshal(m)
	if err != nil {
		return fmt.Sprintf("# unprintable: %v\n", err)
	}
	return string(y)
}
