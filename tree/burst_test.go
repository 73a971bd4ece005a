package tree_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestBurstRaisesNoDependencyWarning: 200 pods created 16 at a time in a
// new namespace race to copy the same ServiceAccount; the workers that
// lose wait for the cache (the copy is the tree's own) and look again,
// which is no failure: no warning lands on any of them. A pod whose
// ConfigMap the member already has under the same name (not the tree's)
// still gets its DependencySyncFailed warning.
func TestBurstRaisesNoDependencyWarning(t *testing.T) {
	w := newWorld(t, nil, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member"}, Spec: v1alpha1.ClusterObjectSpec{
		PodCIDRs: []string{"10.244.0.0/16"}, Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}})
	ctx := context.Background()
	h, m := w.hostCS, w.members["member"]
	memberNodeObj(ctx, t, m, "m1", "64")
	w.run(10 * time.Second)
	waitFor(t, "the virtual node", wantReady(ctx, h, "kosmos-member", corev1.ConditionTrue))
	const ns, pods = "burst", 200
	for _, cs := range []kubernetes.Interface{h, m} {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		must(t, err)
	}
	_, err := h.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
	must(t, err)
	must(t, parallel(pods, 16, func(i int) error {
		_, err := h.CoreV1().Pods(ns).Create(ctx, hostPod(ns, fmt.Sprintf("p-%d", i), "kosmos-member"), metav1.CreateOptions{})
		return err
	}))
	waitFor(t, "every pod copied into the member", func() error {
		l, err := m.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(l.Items) != pods {
			return fmt.Errorf("%d of %d pods in the member", len(l.Items), pods)
		}
		return nil
	})
	// A real failure among them still warns: the member's own ConfigMap.
	for _, cs := range []kubernetes.Interface{h, m} {
		_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "taken"}}, metav1.CreateOptions{})
		must(t, err)
	}
	p := hostPod(ns, "blocked", "kosmos-member")
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "taken"}}}})
	_, err = h.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	must(t, err)
	waitFor(t, "the blocked pod's DependencySyncFailed warning", func() error {
		evs, err := h.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=blocked,reason=DependencySyncFailed"})
		if err != nil {
			return err
		}
		if len(evs.Items) == 0 {
			return fmt.Errorf("no warning yet")
		}
		return nil
	})
	// The tree sends events asynchronously: the burst's have had the
	// blocked pod's wait to land.
	evs, err := h.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "type=" + corev1.EventTypeWarning})
	must(t, err)
	for _, e := range evs.Items {
		if e.InvolvedObject.Name != "blocked" {
			t.Errorf("warning on %s: %s: %s", e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
}
