package reconciler

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/reconciler/apply"
	"kosmos.io/kosmos/reconciler/inventory"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// ClusterDiff is one cluster's objects as they are (Before) and as
// applying the topology would leave them (After), both normalised.
type ClusterDiff struct {
	Cluster       string
	Before, After Objects
	// Leaving says the cluster left the topology: everything Kosmos wrote
	// there goes.
	Leaving bool
}

// DiffReport is a preview of one pass.
type DiffReport struct {
	Clusters []ClusterDiff
	// Guard is the deletion guard's verdict on the pass's deletions.
	Guard inventory.Guard
	// Notes say what the preview could not show (a cluster that left but
	// cannot be reached, an unreadable inventory, clusters not observed).
	Notes []string
}

// Changes lists every change of the diffs, cluster by cluster.
func (r DiffReport) Changes() []Change {
	var out []Change
	for _, d := range r.Clusters {
		out = append(out, Diff(d.Cluster, d.Before, d.After)...)
	}
	return out
}

// LiveDiff previews a pass: it observes the clusters, reads the inventory,
// plans exactly as Pass does (opts as for Pass; Prune shows deletions) and
// asks each API server (server-side dry run) what an apply would leave. It
// writes nothing. Every cluster of the topology must be reachable.
func LiveDiff(ctx context.Context, t *v1alpha1.KosmosTopology, clusters []Cluster, opts PassOptions) (DiffReport, error) {
	opts.defaults()
	p := prepare(ctx, t, clusters, opts, false)
	var errs []error
	for i, c := range p.clusters {
		if p.errs[i] != nil && !p.leaving[c.Name] {
			errs = append(errs, fmt.Errorf("cluster %s: %w", c.Name, p.errs[i]))
		}
	}
	if len(errs) > 0 {
		return DiffReport{}, errors.Join(errs...)
	}
	rep := DiffReport{Guard: p.guard}
	if p.invErr != nil {
		rep.Notes = append(rep.Notes, p.invErr.Error())
	}
	for _, name := range p.forgotten {
		rep.Notes = append(rep.Notes, fmt.Sprintf("cluster %s: left the topology and is forgotten (%s): its objects stay", name, v1alpha1.AnnotationForgetClusters))
	}
	for i, c := range p.clusters {
		if p.errs[i] != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("cluster %s: %v", c.Name, p.errs[i]))
			continue
		}
		var objs []client.Object
		if cp := p.plan.Cluster(c.Name); cp != nil && !p.leaving[c.Name] {
			objs = cp.Objects
		}
		before, after, err := LiveObjects(ctx, c.Client, objs, p.deletions[c.Name])
		if err != nil {
			return DiffReport{}, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		rep.Clusters = append(rep.Clusters, ClusterDiff{Cluster: c.Name, Before: before, After: after, Leaving: p.leaving[c.Name]})
	}
	return rep, nil
}

// LiveObjects reads one cluster's side of a live diff: before is what the
// cluster holds (the desired objects that exist, and the inventory entries
// prune would delete); after is what it would hold, normalised by a
// server-side apply dry run so that server defaults do not show as changes.
// It writes nothing.
func LiveObjects(ctx context.Context, c client.Client, objs []client.Object, deletions []inventory.Entry) (before, after Objects, err error) {
	before, after = Objects{}, Objects{}
	for _, o := range objs {
		m, err := apply.Clean(o)
		if err != nil {
			return nil, nil, err
		}
		u := &unstructured.Unstructured{Object: m}
		key := apply.Key(u)
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
		switch err := c.Patch(ctx, dry, client.Apply, client.FieldOwner(v1alpha1.FieldManager), client.ForceOwnership, client.DryRunAll); {
		case err == nil:
			after[key] = Normalize(dry.Object)
		case meta.IsNoMatchError(err) || apierrors.IsNotFound(err):
			// the CRD or the namespace is not there yet (the same pass
			// creates it): show the object as planned
			after[key] = Normalize(m)
		default:
			return nil, nil, fmt.Errorf("dry-run apply %s: %w", key, err)
		}
	}
	for _, e := range deletions {
		u, err := apply.Get(ctx, c, e)
		if err != nil {
			return nil, nil, err
		}
		if u != nil {
			before[e.Key()] = Normalize(u.Object)
		}
	}
	return before, after, nil
}
