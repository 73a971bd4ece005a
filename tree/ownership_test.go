package tree_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree/translate"
)

// TestForeignNodeName: a host node that already has a virtual node's
// name but is not the tree's (a real node, say, whose kubelet died) is
// never updated and its Lease never renewed; the Cluster object reports
// the conflict, and the member's other virtual nodes are kept as usual.
func TestForeignNodeName(t *testing.T) {
	w := newWorld(t, nil, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-a"}, Spec: v1alpha1.ClusterObjectSpec{
		Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeOneToOne}}})
	ctx := context.Background()
	h, ma := w.hostCS, w.members["member-a"]
	taken := translate.VirtualNodeName("member-a", "n1")
	foreign, err := h.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: taken, Labels: map[string]string{"owner": "someone"}}}, metav1.CreateOptions{})
	must(t, err)
	stale := metav1.NewMicroTime(time.Now().Add(-time.Hour))
	holder, secs := taken, int32(40)
	lease, err := h.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: taken},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &stale}}, metav1.CreateOptions{})
	must(t, err)
	memberNodeObj(ctx, t, ma, "n1", "2")
	memberNodeObj(ctx, t, ma, "n2", "2")
	w.run(5 * time.Second)

	waitFor(t, "the other virtual node Ready with its lease", func() error {
		if err := wantReady(ctx, h, translate.VirtualNodeName("member-a", "n2"), corev1.ConditionTrue)(); err != nil {
			return err
		}
		_, err := h.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, translate.VirtualNodeName("member-a", "n2"), metav1.GetOptions{})
		return err
	})
	w.awaitPasses(t, 5)
	n, err := h.CoreV1().Nodes().Get(ctx, taken, metav1.GetOptions{})
	must(t, err)
	if n.ResourceVersion != foreign.ResourceVersion {
		t.Errorf("the foreign node was written: labels %v taints %v conditions %v", n.Labels, n.Spec.Taints, n.Status.Conditions)
	}
	l, err := h.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, taken, metav1.GetOptions{})
	must(t, err)
	if l.ResourceVersion != lease.ResourceVersion || !l.Spec.RenewTime.Equal(lease.Spec.RenewTime) {
		t.Errorf("the foreign node's Lease was renewed (%v), hiding its dead kubelet", l.Spec.RenewTime)
	}
	waitFor(t, "the conflict in the Cluster's status", func() error {
		var cl v1alpha1.Cluster
		if err := w.host.Get(ctx, client.ObjectKey{Name: "member-a"}, &cl); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(cl.Status.Conditions, "Stalled"); c == nil || !strings.Contains(c.Message, taken) {
			return fmt.Errorf("Stalled: %+v", c)
		}
		return nil
	})
}
