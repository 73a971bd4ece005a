package tree_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestClusterLeavesGracefully: a cluster whose Cluster object is deleted
// while two of its pods run, with a disruption budget that allows none to
// go. Its virtual node is cordoned and stays, and the pods keep running,
// for as long as the budget says so; once it allows, the pods are evicted,
// their copies end in the member with their grace period, and only then
// do the host pods, the virtual node and the Cluster object go. At no
// moment does a host pod go while its copy runs (no pod runs twice).
func TestClusterLeavesGracefully(t *testing.T) {
	a := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-a"}, Spec: v1alpha1.ClusterObjectSpec{
		Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}}
	w := newWorld(t, nil, a)
	ctx := context.Background()
	ma, h := w.members["member-a"], w.hostCS
	memberNodeObj(ctx, t, ma, "a1", "4")
	w.run(2 * time.Second)
	const node = "kosmos-member-a"
	step := steps(t)
	pods := []string{"web-0", "web-1"}

	step("two pods run in the member, a budget allows no disruption", func(t *testing.T) {
		waitFor(t, "the virtual node Ready", wantReady(ctx, h, node, corev1.ConditionTrue))
		_, err := h.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{})
		must(t, err)
		for i, name := range pods {
			p := hostPod("shop", name, node)
			p.Spec.ServiceAccountName, p.Spec.Volumes, p.Spec.Containers[0].VolumeMounts = "", nil, nil
			_, err := h.CoreV1().Pods("shop").Create(ctx, p, metav1.CreateOptions{})
			must(t, err)
			waitFor(t, "the copy of "+name, func() error { _, err := ma.CoreV1().Pods("shop").Get(ctx, name, metav1.GetOptions{}); return err })
			mp, err := ma.CoreV1().Pods("shop").Get(ctx, name, metav1.GetOptions{})
			must(t, err)
			must(t, runPod(ctx, ma, mp, "a1", fmt.Sprintf("10.244.1.%d", 10+i)))
			waitFor(t, name+" Running in the host", func() error {
				hp, err := h.CoreV1().Pods("shop").Get(ctx, name, metav1.GetOptions{})
				if err != nil || hp.Status.Phase != corev1.PodRunning {
					return fmt.Errorf("host pod %s not Running (%v)", name, err)
				}
				return nil
			})
		}
		setBudget(ctx, t, w, 0)
	})

	step("the Cluster object is deleted: cordoned, nothing evicted past the budget", func(t *testing.T) {
		var cl v1alpha1.Cluster
		must(t, w.host.Get(ctx, client.ObjectKey{Name: "member-a"}, &cl))
		if !slices.Contains(cl.Finalizers, v1alpha1.FinalizerTreeDrain) {
			t.Fatalf("the Cluster object is not held by the tree: finalizers %v", cl.Finalizers)
		}
		must(t, w.host.Delete(ctx, &cl))
		waitFor(t, "the virtual node cordoned", func() error {
			n, err := h.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
			if err != nil || !n.Spec.Unschedulable {
				return fmt.Errorf("virtual node not cordoned (%v)", err)
			}
			return nil
		})
		w.awaitPasses(t, 10) // the budget holds everything in place, pass after pass
		if _, err := h.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err != nil {
			t.Fatalf("the virtual node went while its pods run: %v", err)
		}
		for _, name := range pods {
			hp, err := h.CoreV1().Pods("shop").Get(ctx, name, metav1.GetOptions{})
			if err != nil || hp.DeletionTimestamp != nil {
				t.Fatalf("host pod %s evicted past a budget that allows nothing (%v)", name, err)
			}
			if mp, err := ma.CoreV1().Pods("shop").Get(ctx, name, metav1.GetOptions{}); err != nil || mp.DeletionTimestamp != nil {
				t.Fatalf("member copy %s ended past the budget (%v)", name, err)
			}
		}
	})

	step("the budget allows: evicted, copies end first, then the node and the Cluster go", func(t *testing.T) {
		setBudget(ctx, t, w, 2)
		for _, name := range pods {
			waitFor(t, "the copy of "+name+" terminating with the pod's grace", func() error {
				mp, err := ma.CoreV1().Pods("shop").Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				if mp.DeletionTimestamp == nil || mp.DeletionGracePeriodSeconds == nil || *mp.DeletionGracePeriodSeconds != 30 {
					return fmt.Errorf("copy %s not terminating with grace 30", name)
				}
				return nil
			})
		}
		w.awaitPasses(t, 3) // passes run while the copies are still there
		for _, name := range pods {
			if _, err := h.CoreV1().Pods("shop").Get(ctx, name, metav1.GetOptions{}); err != nil {
				t.Fatalf("host pod %s went while its copy runs: %v", name, err)
			}
		}
		if _, err := h.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err != nil {
			t.Fatalf("the virtual node went while copies run: %v", err)
		}
		zero := int64(0)
		for _, name := range pods { // the member's kubelet is done
			must(t, ma.CoreV1().Pods("shop").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}))
		}
		for _, name := range pods {
			waitFor(t, "host pod "+name+" released", gone(func() error { _, err := h.CoreV1().Pods("shop").Get(ctx, name, metav1.GetOptions{}); return err }))
		}
		waitFor(t, "the virtual node removed", gone(func() error { _, err := h.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); return err }))
		waitFor(t, "the Cluster object released", gone(func() error { return w.host.Get(ctx, client.ObjectKey{Name: "member-a"}, &v1alpha1.Cluster{}) }))
	})
}

// setBudget creates (or updates) a budget over the app=web pods and plays
// the host's disruption controller: its status allows allowed disruptions.
func setBudget(ctx context.Context, t *testing.T, w *world, allowed int32) {
	t.Helper()
	pdbs := w.hostCS.PolicyV1().PodDisruptionBudgets("shop")
	pdb, err := pdbs.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		one := intstr.FromInt32(1)
		pdb, err = pdbs.Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
			metav1.CreateOptions{})
		must(t, err)
	}
	pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: allowed,
		CurrentHealthy: 2, DesiredHealthy: 2 - allowed, ExpectedPods: 2}
	_, err = pdbs.UpdateStatus(ctx, pdb, metav1.UpdateOptions{})
	must(t, err)
}
