// Package apply makes one cluster hold a set of desired objects: server-side
// apply with field manager "kosmos", only where the live object differs, and
// prune of what Kosmos owns (both ownership labels) but no longer desires.
// Nothing without both labels is ever deleted.
package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/reconciler/desired"
)

// FieldManager is the server-side apply field manager of every write.
const FieldManager = "kosmos"

// AnnotationHash holds a hash of the desired object as last applied. The
// subset check (does the live object hold every desired field?) cannot see
// a field that the desired state dropped; the hash changes when it does, so
// the object is applied again and server-side apply removes the field.
const AnnotationHash = "kosmos.io/desired-hash"

// PrunedKinds are the kinds prune considers; a namespace is never pruned.
var PrunedKinds = []schema.GroupVersionKind{
	{Group: "kosmos.io", Version: "v1alpha1", Kind: "NodeConfig"},
	{Group: "kosmos.io", Version: "v1alpha1", Kind: "Cluster"},
	{Group: "kosmos.io", Version: "v1alpha1", Kind: "DistributionPolicy"},
	// Multi-cluster services: the ServiceExports written for spec.services
	// (never a user's own: those lack the labels), imports and their slices.
	{Group: "multicluster.x-k8s.io", Version: "v1alpha1", Kind: "ServiceExport"},
	{Group: "multicluster.x-k8s.io", Version: "v1alpha1", Kind: "ServiceImport"},
	{Group: "discovery.k8s.io", Version: "v1", Kind: "EndpointSlice"},
}

// Key names an object in results and errors: Kind/name, or
// Kind/namespace/name for namespaced objects.
func Key(o interface {
	GetKind() string
	GetNamespace() string
	GetName() string
}) string {
	if ns := o.GetNamespace(); ns != "" {
		return o.GetKind() + "/" + ns + "/" + o.GetName()
	}
	return o.GetKind() + "/" + o.GetName()
}

// Result says what a pass did in one cluster, as kind/name lists.
type Result struct {
	Created, Updated, Unchanged, Pruned []string
}

// Writes counts the write requests the pass made.
func (r Result) Writes() int { return len(r.Created) + len(r.Updated) + len(r.Pruned) }

// Cluster applies objs to the cluster behind c. topology names the topology
// whose objects prune may delete. Errors of single objects are collected;
// the others still go through.
func Cluster(ctx context.Context, c client.Client, topology string, objs []client.Object, prune bool) (Result, error) {
	var res Result
	var errs []error
	want := map[string]bool{}
	var us []*unstructured.Unstructured
	for _, obj := range objs {
		u, err := toUnstructured(obj)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		us = append(us, u)
		want[Key(u)] = true
	}
	live, err := liveObjects(ctx, c, us)
	if err != nil {
		return res, err
	}
	var mu sync.Mutex
	sem := make(chan struct{}, 16)
	// Namespaces first: the namespaced objects of the same pass go into them.
	nss := slices.DeleteFunc(slices.Clone(us), func(u *unstructured.Unstructured) bool { return u.GetKind() != "Namespace" })
	rest := slices.DeleteFunc(slices.Clone(us), func(u *unstructured.Unstructured) bool { return u.GetKind() == "Namespace" })
	for _, wave := range [][]*unstructured.Unstructured{nss, rest} {
		applyWave(ctx, c, wave, live, &res, &errs, &mu, sem)
	}
	if prune {
		pruned, err := pruneOwned(ctx, c, topology, want)
		res.Pruned = pruned
		if err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// applyWave applies objects in parallel (at most cap(sem) at once) where the
// live object differs, recording what it did in res and errs.
func applyWave(ctx context.Context, c client.Client, us []*unstructured.Unstructured, live map[string]*unstructured.Unstructured, res *Result, errs *[]error, mu *sync.Mutex, sem chan struct{}) {
	var wg sync.WaitGroup
	for _, u := range us {
		key := Key(u)
		l, exists := live[key]
		switch {
		case !exists:
			res.Created = append(res.Created, key)
		case Subset(u.Object, l.Object):
			res.Unchanged = append(res.Unchanged, key)
			continue
		default:
			res.Updated = append(res.Updated, key)
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := c.Patch(ctx, u, client.Apply, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
				mu.Lock()
				*errs = append(*errs, fmt.Errorf("apply %s: %w", key, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// liveObjects reads what the cluster holds of the objects' kinds: one list
// per kind (per kind and namespace for namespaced kinds) instead of one get
// per object, which keeps a no-op pass over thousands of objects to a
// handful of reads.
func liveObjects(ctx context.Context, c client.Client, us []*unstructured.Unstructured) (map[string]*unstructured.Unstructured, error) {
	type scope struct {
		gvk schema.GroupVersionKind
		ns  string
	}
	out := map[string]*unstructured.Unstructured{}
	listed := map[scope]bool{}
	for _, u := range us {
		sc := scope{u.GroupVersionKind(), u.GetNamespace()}
		if listed[sc] {
			continue
		}
		listed[sc] = true
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(sc.gvk.GroupVersion().WithKind(sc.gvk.Kind + "List"))
		var opts []client.ListOption
		if sc.ns != "" {
			opts = append(opts, client.InNamespace(sc.ns))
		}
		if err := c.List(ctx, list, opts...); err != nil {
			if meta.IsNoMatchError(err) {
				continue // the CRD is not installed: nothing exists
			}
			if sc.ns != "" {
				return nil, fmt.Errorf("list %s in namespace %s: %w", sc.gvk.Kind, sc.ns, err)
			}
			return nil, fmt.Errorf("list %s: %w", sc.gvk.Kind, err)
		}
		for i := range list.Items {
			it := &list.Items[i]
			it.SetGroupVersionKind(sc.gvk) // list items of unstructured lists carry their kind; make sure
			out[Key(it)] = it
		}
	}
	return out, nil
}

// Clean converts an object to the map that is applied: no status, no
// server-set or null fields (an empty struct converts to null, which a CRD
// schema refuses). render shows exactly this.
func Clean(obj client.Object) (map[string]any, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", obj.GetName(), err)
	}
	delete(m, "status")
	dropNulls(m)
	return m, nil
}

func toUnstructured(obj client.Object) (*unstructured.Unstructured, error) {
	m, err := Clean(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	raw, err := json.Marshal(m) // map keys marshal sorted: a stable hash
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationHash] = hex.EncodeToString(sum[:12])
	u.SetAnnotations(ann)
	return u, nil
}

// dropNulls removes null values from a map, recursively.
func dropNulls(m map[string]any) {
	for k, v := range m {
		switch x := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			dropNulls(x)
		case []any:
			for _, e := range x {
				if em, ok := e.(map[string]any); ok {
					dropNulls(em)
				}
			}
		}
	}
}

// Owned lists the objects of the pruned kinds that carry both ownership
// labels of the topology: what prune may delete.
func Owned(ctx context.Context, c client.Client, topology string) ([]unstructured.Unstructured, error) {
	var out []unstructured.Unstructured
	sel := client.MatchingLabels{desired.LabelManagedBy: desired.ManagedBy, desired.LabelTopology: topology}
	for _, gvk := range PrunedKinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, list, sel); err != nil {
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				continue // the CRD is not installed: nothing of that kind
			}
			return nil, fmt.Errorf("list %s: %w", gvk.Kind, err)
		}
		out = append(out, list.Items...)
	}
	return out, nil
}

// pruneOwned deletes owned objects that are not desired.
func pruneOwned(ctx context.Context, c client.Client, topology string, want map[string]bool) ([]string, error) {
	owned, err := Owned(ctx, c, topology)
	if err != nil {
		return nil, err
	}
	var pruned []string
	var errs []error
	for i := range owned {
		it := &owned[i]
		key := Key(it)
		if want[key] {
			continue
		}
		if err := c.Delete(ctx, it); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("prune %s: %w", key, err))
			continue
		}
		pruned = append(pruned, key)
	}
	slices.Sort(pruned)
	return pruned, errors.Join(errs...)
}

// Subset reports whether every field of want is present with the same value
// in have: the live object already holds what would be applied, so applying
// it would change nothing. An empty map or list in want matches a missing
// field (the server drops empty values).
func Subset(want, have any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, _ := have.(map[string]any)
		for k, wv := range w {
			hv, ok := h[k]
			if !ok {
				if isEmpty(wv) {
					continue
				}
				return false
			}
			if !Subset(wv, hv) {
				return false
			}
		}
		return true
	case []any:
		h, _ := have.([]any)
		if len(w) != len(h) {
			return len(w) == 0 && have == nil
		}
		for i := range w {
			if !Subset(w[i], h[i]) {
				return false
			}
		}
		return true
	case nil:
		return have == nil
	default:
		return reflect.DeepEqual(normalizeNumber(want), normalizeNumber(have))
	}
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		for _, e := range x {
			if !isEmpty(e) {
				return false
			}
		}
		return true
	case []any:
		return len(x) == 0
	}
	return false
}

func normalizeNumber(v any) any {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case float64:
		if n == float64(int64(n)) {
			return int64(n)
		}
	}
	return v
}
