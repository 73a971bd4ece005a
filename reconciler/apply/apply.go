// Package apply makes one cluster hold a set of desired objects: server-side
// apply with field manager "kosmos", only where the live object differs, and
// prune of the objects the cluster's inventory records but the plan no
// longer holds, each delete carrying the UID Kosmos recorded. Nothing
// outside the inventory is ever deleted; namespaces are never deleted.
package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/reconciler/inventory"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// AnnotationHash holds a hash of the desired object as last applied. The
// subset check (does the live object hold every desired field?) cannot see
// a field that the desired state dropped; the hash changes when it does, so
// the object is applied again and server-side apply removes the field.
const AnnotationHash = "kosmos.io/desired-hash"

// legacyKinds are the kinds earlier versions wrote. A cluster without an
// inventory record (last applied by such a version) is swept over them once
// (ConfigMaps only in kosmos-system, the one place Kosmos put any), so what
// they wrote is adopted or pruned; from then on its inventory says what
// Kosmos owns. ClusterPeers are not among them: no earlier version wrote
// any, and this one records every shard in the inventory, which prunes
// shards that disappear like any other object.
var legacyKinds = []struct {
	gvk       schema.GroupVersionKind
	namespace string
}{
	{schema.GroupVersionKind{Group: "kosmos.io", Version: "v1alpha1", Kind: "NodeConfig"}, ""},
	{schema.GroupVersionKind{Group: "kosmos.io", Version: "v1alpha1", Kind: "Cluster"}, ""},
	{schema.GroupVersionKind{Group: "kosmos.io", Version: "v1alpha1", Kind: "DistributionPolicy"}, ""},
	{schema.GroupVersionKind{Group: "multicluster.x-k8s.io", Version: "v1alpha1", Kind: "ServiceExport"}, ""},
	{schema.GroupVersionKind{Group: "multicluster.x-k8s.io", Version: "v1alpha1", Kind: "ServiceImport"}, ""},
	{schema.GroupVersionKind{Group: "discovery.k8s.io", Version: "v1", Kind: "EndpointSlice"}, ""},
	{schema.GroupVersionKind{Group: "", Version: "v1", Kind: "ConfigMap"}, v1alpha1.SystemNamespace},
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

// KeyOf names a typed object as Key does.
func KeyOf(o client.Object) string {
	if ns := o.GetNamespace(); ns != "" {
		return o.GetObjectKind().GroupVersionKind().Kind + "/" + ns + "/" + o.GetName()
	}
	return o.GetObjectKind().GroupVersionKind().Kind + "/" + o.GetName()
}

// Result says what a pass did in one cluster, as kind/name lists: only what
// happened (a write that failed is in Failed, never in Created or Updated).
type Result struct {
	Created, Updated, Unchanged, Pruned []string
	// Failed lists the objects whose write or delete failed; the errors say
	// why.
	Failed []string
	// Released lists inventory entries that were not deleted because the
	// object had been replaced by someone else (another UID): it is no
	// longer Kosmos's and is forgotten.
	Released []string
}

// Writes counts the write requests that succeeded.
func (r Result) Writes() int { return len(r.Created) + len(r.Updated) + len(r.Pruned) }

// Options tune one cluster's apply.
type Options struct {
	// Inventory is what Kosmos applied in the cluster before (the last
	// record). With Prune, entries the objects no longer hold are deleted.
	Inventory []inventory.Entry
	Prune     bool
}

// Cluster applies objs to the cluster behind c and, with opts.Prune,
// deletes what the inventory records but objs no longer hold. It returns
// what happened and the cluster's new inventory: every object that is now
// applied (with its UID), the old entries of objects whose write failed,
// and stale entries that could not be deleted yet. Errors of single
// objects are collected; the others still go through.
func Cluster(ctx context.Context, c client.Client, objs []client.Object, opts Options) (Result, []inventory.Entry, error) {
	var res Result
	var errs []error
	want := map[string]bool{}
	var us []*unstructured.Unstructured
	for _, obj := range objs {
		want[KeyOf(obj)] = true // wanted even when it cannot be applied: never pruned for it
		u, err := toUnstructured(obj)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		us = append(us, u)
	}
	old := map[string]inventory.Entry{}
	for _, e := range opts.Inventory {
		old[e.Key()] = e
	}
	live, err := liveObjects(ctx, c, us)
	if err != nil {
		return res, opts.Inventory, err
	}
	w := &wave{c: c, live: live, res: &res, errs: &errs, sem: make(chan struct{}, 16), applied: map[string]inventory.Entry{}}
	// Namespaces first: the namespaced objects of the same pass go into them.
	nss := slices.DeleteFunc(slices.Clone(us), func(u *unstructured.Unstructured) bool { return u.GetKind() != "Namespace" })
	rest := slices.DeleteFunc(slices.Clone(us), func(u *unstructured.Unstructured) bool { return u.GetKind() == "Namespace" })
	w.apply(ctx, nss)
	w.apply(ctx, rest)
	var next []inventory.Entry
	for key, e := range w.applied {
		if e.Kind != "Namespace" { // shared with Kosmos's own workloads: never recorded, never pruned
			next = append(next, e)
		}
		delete(old, key)
	}
	for key, e := range old {
		if want[key] { // desired, but its write failed: it is still there as before
			next = append(next, e)
		}
	}
	stale := inventory.Stale(slices.Collect(maps.Values(old)), want)
	// Add before delete: while a write of this pass failed, nothing is
	// pruned (an old ClusterPeers shard stays until every shard that
	// replaces it is written; a NodeConfig's old peer data until the new
	// is there). The stale entries stay recorded for the next pass.
	if opts.Prune && len(res.Failed) == 0 {
		kept, err := prune(ctx, c, stale, &res)
		next = append(next, kept...)
		if err != nil {
			errs = append(errs, err)
		}
	} else {
		next = append(next, stale...)
	}
	inventory.SortEntries(next)
	sortResult(&res)
	return res, next, errors.Join(errs...)
}

func sortResult(r *Result) {
	for _, l := range [][]string{r.Created, r.Updated, r.Unchanged, r.Pruned, r.Failed, r.Released} {
		slices.Sort(l)
	}
}

// wave applies objects in parallel (at most cap(sem) at once) where the
// live object differs, recording what happened.
type wave struct {
	c       client.Client
	live    map[string]*unstructured.Unstructured
	sem     chan struct{}
	mu      sync.Mutex
	res     *Result
	errs    *[]error
	applied map[string]inventory.Entry
}

func (w *wave) apply(ctx context.Context, us []*unstructured.Unstructured) {
	var wg sync.WaitGroup
	for _, u := range us {
		key := Key(u)
		l, exists := w.live[key]
		if exists && Subset(u.Object, l.Object) {
			w.mu.Lock()
			w.res.Unchanged = append(w.res.Unchanged, key)
			w.applied[key] = entryOf(l)
			w.mu.Unlock()
			continue
		}
		wg.Go(func() {
			w.sem <- struct{}{}
			defer func() { <-w.sem }()
			err := w.c.Patch(ctx, u, client.Apply, client.FieldOwner(v1alpha1.FieldManager), client.ForceOwnership)
			w.mu.Lock()
			defer w.mu.Unlock()
			switch {
			case err != nil:
				w.res.Failed = append(w.res.Failed, key)
				*w.errs = append(*w.errs, fmt.Errorf("apply %s: %w", key, err))
				return
			case exists:
				w.res.Updated = append(w.res.Updated, key)
			default:
				w.res.Created = append(w.res.Created, key)
			}
			w.applied[key] = entryOf(u) // the patch answered with the object as written
		})
	}
	wg.Wait()
}

// entryOf is the inventory entry of an object as the server holds it.
func entryOf(u *unstructured.Unstructured) inventory.Entry {
	return inventory.Entry{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName(), UID: string(u.GetUID())}
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

// Desired is an object as Cluster applies it: cleaned (Clean) and marked
// with the hash of its content (AnnotationHash). Cluster writes it only where
// the live object does not hold it already (Subset), so comparing two
// passes' Desired forms tells which writes the second makes.
func Desired(obj client.Object) (*unstructured.Unstructured, error) { return toUnstructured(obj) }

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

// LegacyOwned lists, as inventory entries, the objects of the kinds earlier
// versions pruned that carry both ownership labels of the topology: the
// inventory of a cluster last applied before inventories existed.
func LegacyOwned(ctx context.Context, c client.Client, topology string) ([]inventory.Entry, error) {
	var out []inventory.Entry
	sel := client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelTopology: topology}
	for _, k := range legacyKinds {
		gvk := k.gvk
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		opts := []client.ListOption{sel}
		if k.namespace != "" {
			opts = append(opts, client.InNamespace(k.namespace))
		}
		if err := c.List(ctx, list, opts...); err != nil {
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				continue // the CRD is not installed: nothing of that kind
			}
			return nil, fmt.Errorf("list %s: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			it := &list.Items[i]
			it.SetGroupVersionKind(gvk)
			out = append(out, entryOf(it))
		}
	}
	inventory.SortEntries(out)
	return out, nil
}

// Get reads the object an inventory entry names (nil when it is gone or was
// replaced by another of the same name). diff uses it to show what prune
// would delete.
func Get(ctx context.Context, c client.Client, e inventory.Entry) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(e.APIVersion)
	u.SetKind(e.Kind)
	switch err := c.Get(ctx, client.ObjectKey{Namespace: e.Namespace, Name: e.Name}, u); {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get %s: %w", e.Key(), err)
	}
	if e.UID != "" && string(u.GetUID()) != e.UID {
		return nil, nil
	}
	return u, nil
}

// prune deletes stale entries, each under a UID precondition: an object
// someone recreated under the same name is never deleted (it is released
// from the inventory). It returns the entries that could not be deleted
// (kept for the next pass).
func prune(ctx context.Context, c client.Client, stale []inventory.Entry, res *Result) ([]inventory.Entry, error) {
	var kept []inventory.Entry
	var errs []error
	for i, e := range stale {
		if e.Kind == "Namespace" {
			continue // never deleted (and no longer recorded)
		}
		if err := ctx.Err(); err != nil { // the cluster stopped answering: keep the rest for the next pass
			for _, rest := range stale[i:] {
				res.Failed = append(res.Failed, rest.Key())
			}
			kept = append(kept, stale[i:]...)
			errs = append(errs, fmt.Errorf("prune %d more objects: %w", len(stale)-i, err))
			break
		}
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(e.APIVersion)
		u.SetKind(e.Kind)
		u.SetNamespace(e.Namespace)
		u.SetName(e.Name)
		if e.UID == "" { // no proof it is the object Kosmos wrote: never deleted
			res.Released = append(res.Released, e.Key())
			continue
		}
		uid := types.UID(e.UID)
		switch err := c.Delete(ctx, u, client.Preconditions{UID: &uid}); {
		case err == nil || apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
			res.Pruned = append(res.Pruned, e.Key())
		case apierrors.IsConflict(err):
			res.Released = append(res.Released, e.Key())
		default:
			res.Failed = append(res.Failed, e.Key())
			kept = append(kept, e)
			errs = append(errs, fmt.Errorf("prune %s: %w", e.Key(), err))
		}
	}
	return kept, errors.Join(errs...)
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
