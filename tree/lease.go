package tree

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// LeaseDuration is the virtual nodes' lease duration, as a kubelet's.
const LeaseDuration = 40 * time.Second

// renewLease renews the virtual node's heartbeat in kube-node-lease, as a
// kubelet does; it is renewed only while the member answers, so the host's
// node lifecycle sees a silent member the way it sees a dead kubelet.
func (c *Controller) renewLease(ctx context.Context, node string) error {
	var owner *metav1.OwnerReference
	if n, err := c.hostNodes.Get(node); err == nil {
		owner = &metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}
	}
	return RenewNodeLease(ctx, c.hostCS, node, owner, map[string]string{LabelManagedBy: ManagedBy})
}

// RenewNodeLease creates or renews node's Lease in kube-node-lease (held
// by the node, LeaseDuration), as a kubelet's heartbeat; owner and labels
// are set when the Lease is created, and an existing Lease that lacks
// those labels is someone else's: it is not renewed (an error says so). A
// conflicting renewal is no error: another renewal just happened.
func RenewNodeLease(ctx context.Context, cs kubernetes.Interface, node string, owner *metav1.OwnerReference, labels map[string]string) error {
	leases := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	secs := int32(LeaseDuration.Seconds())
	l, err := leases.Get(ctx, node, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: node, Namespace: corev1.NamespaceNodeLease, Labels: labels},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &node, LeaseDurationSeconds: &secs, RenewTime: &now},
		}
		if owner != nil {
			l.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	case err == nil && !hasLabels(l.Labels, labels):
		return fmt.Errorf("lease of %s: it lacks the labels %v, so it is not this renewer's; left alone", node, labels)
	case err == nil:
		l.Spec.RenewTime, l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = &now, &node, &secs
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: FieldManager})
		if apierrors.IsConflict(err) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("lease of %s: %w", node, err)
	}
	return nil
}

// hasLabels tells whether have holds every label of want.
func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
