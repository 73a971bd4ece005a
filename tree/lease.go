package tree

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LeaseDuration is the virtual nodes' lease duration, as a kubelet's.
const LeaseDuration = 40 * time.Second

// renewLease renews the virtual node's heartbeat in kube-node-lease, as a
// kubelet does; it is renewed only while the member answers, so the host's
// node lifecycle sees a silent member the way it sees a dead kubelet.
func (c *Controller) renewLease(ctx context.Context, node string) error {
	leases := c.hostCS.CoordinationV1().Leases(NodeLeaseNamespace)
	now := metav1.NewMicroTime(time.Now())
	secs := int32(LeaseDuration.Seconds())
	l, err := leases.Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: node, Namespace: NodeLeaseNamespace, Labels: map[string]string{LabelManagedBy: ManagedBy}},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &node, LeaseDurationSeconds: &secs, RenewTime: &now},
		}
		if n, err := c.hostNodes.Get(node); err == nil {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}}
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{FieldManager: FieldManager})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("lease of %s: %w", node, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("lease of %s: %w", node, err)
	}
	l.Spec.RenewTime, l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = &now, &node, &secs
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("lease of %s: %w", node, err)
	}
	return nil
}
