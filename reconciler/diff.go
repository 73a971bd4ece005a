package reconciler

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/reconciler/apply"
	"kosmos.io/kosmos/reconciler/desired"
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
func DesiredObjects(co desired.ClusterObjects) (Objects, error) {
	out := Objects{}
	for _, o := range co.Objects {
		m, err := apply.Clean(o)
		if err != nil {
			return nil, err
		}
		out[o.GetObjectKind().GroupVersionKind().Kind+"/"+o.GetName()] = Normalize(m)
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

func lines(s string) []string {
	if s == "" {
		return nil // an absent object has no lines, not one empty line
	}
	return difflib.SplitLines(s)
}

// Unified renders a change as a unified diff; with colour, additions are
// green and removals red.
func Unified(c Change, colour bool) string {
	from, to := "a/"+c.Cluster+"/"+c.Key, "b/"+c.Cluster+"/"+c.Key
	if c.Old == "" {
		from = "/dev/null"
	}
	if c.New == "" {
		to = "/dev/null"
	}
	text, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: lines(c.Old), B: lines(c.New), FromFile: from, ToFile: to, Context: 3,
	})
	if !colour {
		return text
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(text, "\n") {
		switch {
		case strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+++"):
			b.WriteString("\x1b[32m" + strings.TrimSuffix(l, "\n") + "\x1b[0m\n")
		case strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "---"):
			b.WriteString("\x1b[31m" + strings.TrimSuffix(l, "\n") + "\x1b[0m\n")
		default:
			b.WriteString(l)
		}
	}
	return b.String()
}

// LiveObjects reads one cluster's side of a live diff: before is what the
// cluster holds (the desired objects that exist, and the owned objects prune
// would delete); after is what it would hold, normalised by a server-side
// apply dry run so that server defaults do not show as changes. It writes
// nothing.
func LiveObjects(ctx context.Context, c client.Client, topology string, objs []client.Object) (before, after Objects, err error) {
	before, after = Objects{}, Objects{}
	want := map[string]bool{}
	for _, o := range objs {
		m, err := apply.Clean(o)
		if err != nil {
			return nil, nil, err
		}
		u := &unstructured.Unstructured{Object: m}
		key := apply.Key(u)
		want[key] = true
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(u.GroupVersionKind())
		switch err := c.Get(ctx, client.ObjectKey{Name: u.GetName(), Namespace: u.GetNamespace()}, live); {
		case err == nil:
			before[key] = Normalize(live.Object)
		case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		default:
			return nil, nil, fmt.Errorf("get %s: %w", key, err)
		}
		dry := u.DeepCopy()
		switch err := c.Patch(ctx, dry, client.Apply, client.FieldOwner(apply.FieldManager), client.ForceOwnership, client.DryRunAll); {
		case err == nil:
			after[key] = Normalize(dry.Object)
		case meta.IsNoMatchError(err): // the CRD is not installed yet: show the object as planned
			after[key] = Normalize(m)
		default:
			return nil, nil, fmt.Errorf("dry-run apply %s: %w", key, err)
		}
	}
	owned, err := apply.Owned(ctx, c, topology)
	if err != nil {
		return nil, nil, err
	}
	for _, u := range owned {
		if g := u.GroupVersionKind().Group; g == "multicluster.x-k8s.io" || g == "discovery.k8s.io" {
			continue // service imports follow the clusters' exports, not the topology alone: not diffed (yet)
		}
		if key := apply.Key(&u); !want[key] {
			before[key] = Normalize(u.Object)
		}
	}
	return before, after, nil
}
