package tree_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestPodBoundBeforeItsVirtualNode: a host pod bound to a virtual node
// that does not exist yet (the tree has not made it) is copied to the
// member once the node appears, without the pod changing again.
func TestPodBoundBeforeItsVirtualNode(t *testing.T) {
	w := newWorld(t, nil, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-a"}, Spec: v1alpha1.ClusterObjectSpec{Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}})
	ctx := context.Background()
	h, ma := w.hostCS, w.members["member-a"]
	memberNodeObj(ctx, t, ma, "a1", "4")
	_, err := h.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{})
	must(t, err)
	_, err = h.CoreV1().ServiceAccounts("shop").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
	must(t, err)
	_, err = h.CoreV1().Pods("shop").Create(ctx, hostPod("shop", "early-0", "kosmos-member-a"), metav1.CreateOptions{})
	must(t, err)
	start := time.Now()
	w.run(10 * time.Second)
	waitFor(t, "the virtual node", wantReady(ctx, h, "kosmos-member-a", corev1.ConditionTrue))
	waitFor(t, "the early pod's copy in the member", func() error {
		_, err := ma.CoreV1().Pods("shop").Get(ctx, "early-0", metav1.GetOptions{})
		return err
	})
	t.Logf("copied %s after the tree started", time.Since(start).Round(time.Millisecond))
}
