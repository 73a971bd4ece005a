package probe

// Sweeping what a killed check left behind.
//
// Close deletes the run's probe Services and ServiceExports, but a check
// killed outright (SIGKILL, a lost laptop) never gets there, and its
// exports would stay imported everywhere. So every run, before it exports
// its own, deletes the probe objects of other runs that are older than the
// probe deadline (Exporter.MaxAge, the probe pods' activeDeadlineSeconds):
// no live run is that old. Only objects in the probe namespace that carry
// the probe's labels (Kosmos's managed-by, app.kubernetes.io/name
// kosmos-probe, a run label) are considered, each deleted with its UID as
// precondition. Listing needs `list` on services and serviceexports in the
// probe Role (kustomize/base/probe/rbac.yaml); with an older Role that lacks
// it, the sweep is skipped.

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// DefaultMaxAge is how old another run's probe objects must be to be swept
// when Exporter.MaxAge is not set: the probe pods' default deadline.
const DefaultMaxAge = 5 * time.Minute

// staleProbeObject tells whether an object with these labels, created
// then, is another run's probe object older than maxAge at now. Pure.
func staleProbeObject(labels map[string]string, created, now time.Time, run string, maxAge time.Duration) bool {
	other := labels[LabelRun]
	return labels[v1alpha1.LabelManagedBy] == v1alpha1.ManagedBy && labels["app.kubernetes.io/name"] == "kosmos-probe" &&
		other != "" && other != run && !created.IsZero() && now.Sub(created) > maxAge
}

// Sweep deletes, in every cluster, the probe Services and ServiceExports of
// other runs older than MaxAge (see the top of this file), and returns how
// many it deleted. A cluster whose Role does not allow listing them, or
// without the MCS API, is skipped.
func (x *Exporter) Sweep(ctx context.Context) (int, error) {
	maxAge := x.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	sel := client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, "app.kubernetes.io/name": "kosmos-probe"}
	n := 0
	var errs []error
	for name, c := range x.Clusters {
		var svcs corev1.ServiceList
		var exps mcsv1a1.ServiceExportList
		var objs []client.Object
		for _, l := range []client.ObjectList{&exps, &svcs} {
			err := c.List(ctx, l, client.InNamespace(x.Namespace), sel)
			switch {
			case apierrors.IsForbidden(err) || meta.IsNoMatchError(err):
				continue
			case err != nil:
				errs = append(errs, fmt.Errorf("cluster %s: list probe objects: %w", name, err))
				continue
			}
		}
		for i := range exps.Items {
			objs = append(objs, &exps.Items[i])
		}
		for i := range svcs.Items {
			objs = append(objs, &svcs.Items[i])
		}
		now := time.Now()
		for _, o := range objs {
			if !staleProbeObject(o.GetLabels(), o.GetCreationTimestamp().Time, now, x.Run, maxAge) {
				continue
			}
			uid := o.GetUID()
			err := c.Delete(ctx, o, client.Preconditions{UID: &uid})
			switch {
			case err == nil:
				n++
			case !apierrors.IsNotFound(err) && !apierrors.IsConflict(err):
				errs = append(errs, fmt.Errorf("cluster %s: delete stale probe object %s/%s of run %s: %w", name, o.GetNamespace(), o.GetName(), o.GetLabels()[LabelRun], err))
			}
		}
	}
	return n, errors.Join(errs...)
}
