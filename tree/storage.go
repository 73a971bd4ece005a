package tree

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"kosmos.io/kosmos/tree/translate"
)

// keyClaim prefixes the queue keys of claims.
const keyClaim = "claim:"

// reconcileClaim reflects the member's bound copy of host claim ns/name:
// the volume appears in the host, and the host claim is bound to it.
func (m *memberSync) reconcileClaim(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(strings.TrimPrefix(key, keyClaim), "/")
	mc, err := m.claims.PersistentVolumeClaims(ns).Get(name)
	if err != nil || mc.Status.Phase != corev1.ClaimBound || mc.Spec.VolumeName == "" {
		return nil // not bound in the member (yet)
	}
	hc, err := m.ctl.hostClaims.PersistentVolumeClaims(ns).Get(name)
	if err != nil || hc.DeletionTimestamp != nil || !translate.CopiesClaim(hc, mc) {
		return nil // collect removes the copy
	}
	pv, err := m.cs.CoreV1().PersistentVolumes().Get(ctx, mc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("volume %s of claim %s in member %s: %w", mc.Spec.VolumeName, key, m.name, err)
	}
	want := translate.HostPV(m.cluster.Load(), pv, hc)
	if err := m.ctl.writeHostPV(ctx, want); err != nil {
		return err
	}
	if err := m.ctl.bindHostClaim(ctx, hc, mc, want); err != nil {
		return err
	}
	// After the bind: a resize the member refuses must not hold up the
	// host claim's binding and status.
	return m.resizeClaim(ctx, hc, mc) // claimresize.go
}

// writeHostPV creates or updates a reflected volume and marks it Bound.
func (c *Controller) writeHostPV(ctx context.Context, want *corev1.PersistentVolume) error {
	pvs := c.hostCS.CoreV1().PersistentVolumes()
	have, err := c.hostPVs.Get(want.Name)
	switch {
	case apierrors.IsNotFound(err):
		have, err = pvs.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			return errRequeue
		}
		if err != nil {
			return fmt.Errorf("host volume %s: %w", want.Name, err)
		}
		c.Log.Info("volume reflected in the host", "volume", want.Name)
	case err != nil:
		return err
	case have.Annotations[translate.AnnotationMemberVolume] != want.Annotations[translate.AnnotationMemberVolume]:
		return fmt.Errorf("host volume %s reflects %q, not %q: left alone", want.Name, have.Annotations[translate.AnnotationMemberVolume], want.Annotations[translate.AnnotationMemberVolume])
	case !equality.Semantic.DeepEqual(have.Spec.ClaimRef, want.Spec.ClaimRef) || !maps.Equal(have.Labels, want.Labels) ||
		!equality.Semantic.DeepEqual(have.Spec.Capacity, want.Spec.Capacity):
		up := have.DeepCopy()
		up.Spec.ClaimRef, up.Labels, up.Spec.Capacity = want.Spec.ClaimRef, want.Labels, want.Spec.Capacity // capacity: the member's volume grew
		if have, err = pvs.Update(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("host volume %s: %w", want.Name, err)
		}
	}
	if have.Status.Phase == corev1.VolumeBound {
		return nil
	}
	up := have.DeepCopy()
	up.Status.Phase = corev1.VolumeBound
	_, err = pvs.UpdateStatus(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

// bindHostClaim binds the host claim to the reflected volume, as the
// host's volume binder would, and shows the member claim mc's status on
// it (translate.HostClaimStatus).
func (c *Controller) bindHostClaim(ctx context.Context, hc, mc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) error {
	claims := c.hostCS.CoreV1().PersistentVolumeClaims(hc.Namespace)
	if hc.Spec.VolumeName == "" {
		up := hc.DeepCopy()
		up.Spec.VolumeName = pv.Name
		var err error
		if hc, err = claims.Update(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("bind host claim %s/%s: %w", up.Namespace, up.Name, err)
		}
	}
	if hc.Spec.VolumeName != pv.Name {
		return fmt.Errorf("host claim %s/%s is bound to %s, not to the member's volume %s", hc.Namespace, hc.Name, hc.Spec.VolumeName, pv.Name)
	}
	st := translate.HostClaimStatus(hc, mc, pv)
	if equality.Semantic.DeepEqual(hc.Status, st) {
		return nil
	}
	up := hc.DeepCopy()
	up.Status = st
	_, err := claims.UpdateStatus(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

// collectVolumes removes the host's reflections of this member's volumes
// whose host claim is gone or being deleted.
func (m *memberSync) collectVolumes(ctx context.Context) error {
	pvs, _ := m.ctl.hostPVs.List(labels.SelectorFromSet(labels.Set{translate.LabelCluster: m.name}))
	var errs []error
	for _, pv := range pvs {
		ref := pv.Spec.ClaimRef
		if ref == nil {
			continue
		}
		hc, err := m.ctl.hostClaims.PersistentVolumeClaims(ref.Namespace).Get(ref.Name)
		if (err == nil && hc.UID == ref.UID && hc.DeletionTimestamp == nil) || (err != nil && !apierrors.IsNotFound(err)) {
			continue
		}
		errs = append(errs, m.ctl.removeHostPV(ctx, pv))
	}
	return errors.Join(errs...)
}

// removeHostPV deletes the reflected volume pv, only if it is still the
// object of that UID: a volume recreated under the name since (by anyone)
// is never deleted for it.
func (c *Controller) removeHostPV(ctx context.Context, pv *corev1.PersistentVolume) error {
	uid := pv.UID
	err := c.hostCS.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("remove host volume %s: %w", pv.Name, err)
	}
	return nil
}
