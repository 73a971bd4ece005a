// This file makes a host claim's resize follow to the member's copy the
// tree created (translate.ClaimResize decides); storage.go carries the
// member volume's capacity and the member claim's status back up
// (translate.HostClaimStatus). The resize comes after the bind, and a
// refusal (Forbidden, Invalid) is final: an event on the host claim, no
// retry loop that would hold up its binding and status. Claims the tree
// did not create are never looked at: only the member's own-claims cache
// (label managed-by kosmos-tree and this tree's owner) is read.

package tree

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/tree/translate"
)

// ReasonClaimResizeRefused is the event on a host claim whose resize the
// member refused.
const ReasonClaimResizeRefused = "ClaimResizeRefused"

// resizeRefused tells a member's final refusal of a resize (Forbidden:
// RBAC or the PersistentVolumeClaimResize admission; Invalid: validation)
// from what a retry may get past (conflicts, timeouts, an unreachable
// member).
func resizeRefused(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsInvalid(err)
}

// claimEvent records an event on host claim hc.
func (c *Controller) claimEvent(hc *corev1.PersistentVolumeClaim, typ, reason, msg string) {
	if c.recorder != nil {
		c.recorder.Event(hc, typ, reason, msg)
	}
	c.Log.Info("claim event", "claim", hc.Namespace+"/"+hc.Name, "reason", reason, "message", msg)
}

// onHostClaim queues a changed host claim with every member that holds
// the tree's copy of it.
func (c *Controller) onHostClaim(obj any) {
	hc, ok := unwrap(obj).(*corev1.PersistentVolumeClaim)
	if !ok {
		return
	}
	for _, m := range c.memberList() {
		if !m.ready.Load() {
			continue
		}
		if _, err := m.claims.PersistentVolumeClaims(hc.Namespace).Get(hc.Name); err == nil {
			m.queue.Add(keyClaim + hc.Namespace + "/" + hc.Name)
		}
	}
}

// resizeClaim grows the member's claim mc to what host claim hc asks for.
func (m *memberSync) resizeClaim(ctx context.Context, hc, mc *corev1.PersistentVolumeClaim) error {
	size, ok := translate.ClaimResize(hc, mc)
	if !ok {
		return nil
	}
	up := mc.DeepCopy()
	up.Spec.Resources.Requests = up.Spec.Resources.Requests.DeepCopy()
	if up.Spec.Resources.Requests == nil {
		up.Spec.Resources.Requests = corev1.ResourceList{}
	}
	up.Spec.Resources.Requests[corev1.ResourceStorage] = size
	_, err := m.cs.CoreV1().PersistentVolumeClaims(mc.Namespace).Update(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager})
	if err != nil && resizeRefused(err) {
		// Final: retrying cannot make the member resize (its storage
		// class does not allow expansion, the volume is static, or the
		// tree's identity may not update claims). The host claim says
		// so; it is tried again when the host claim or its copy changes.
		m.ctl.claimEvent(hc, corev1.EventTypeWarning, ReasonClaimResizeRefused,
			fmt.Sprintf("member %s refuses to resize claim %s/%s to %s: %v", m.name, mc.Namespace, mc.Name, size.String(), err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("resize claim %s/%s in member %s to %s: %w", mc.Namespace, mc.Name, m.name, size.String(), err)
	}
	m.ctl.Log.Info("member claim resized", "cluster", m.name, "claim", mc.Namespace+"/"+mc.Name, "storage", size.String())
	return nil
}
