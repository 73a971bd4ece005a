package tree_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestClaimResizeAndDeletion, on real control planes, with the tree in
// the member under the shipped kosmos-host-tree role
// (kustomize/base/host-access/rbac.yaml): a host claim used by a pod on a
// virtual node grows (spec.resources.requests.storage 1Gi → 3Gi) and the
// member's claim the tree created follows. When the member's volume has
// grown (the test plays the member's resizer), the host's reflected volume
// says so, but the host claim keeps the member claim's capacity until the
// member claim's status says the resize is done (conditions, allocated
// resources and capacity follow it). A member claim of the same name as
// another host claim, which the tree did not create, is not resized when
// that host claim grows. Deleting the host claim, after the pod is gone,
// deletes the member's claim, and never the member's own.
func TestClaimResizeAndDeletion(t *testing.T) {
	w := newWorld(t, nil, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-a"}, Spec: v1alpha1.ClusterObjectSpec{Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}})
	ctx := context.Background()
	h, ma := w.hostCS, w.members["member-a"]
	memberNodeObj(ctx, t, ma, "a1", "4")
	shippedTreeIdentity(ctx, t, w, "member-a")
	s := newClaimScene(ctx, t, w, "fast", true)
	w.run(10 * time.Second)
	step := steps(t)
	var hc, mc *corev1.PersistentVolumeClaim

	step("a pod's claim bound in the member and the host", func(t *testing.T) {
		hc, mc = s.bound(t, "data", "db-0", "pvc-a1-1")
	})

	step("a claim the tree did not create stays as it is", func(t *testing.T) {
		// Both bound, so that either could be resized.
		for _, cs := range []kubernetes.Interface{ma, h} {
			c, err := cs.CoreV1().PersistentVolumeClaims("shop").Create(ctx, s.claim("theirs", "1Gi"), metav1.CreateOptions{})
			must(t, err)
			c.Status.Phase = corev1.ClaimBound
			_, err = cs.CoreV1().PersistentVolumeClaims("shop").UpdateStatus(ctx, c, metav1.UpdateOptions{})
			must(t, err)
		}
		theirs, err := h.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "theirs", metav1.GetOptions{})
		must(t, err)
		s.grow(t, theirs, "5Gi")
		w.awaitPasses(t, 3)
		c, err := ma.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "theirs", metav1.GetOptions{})
		must(t, err)
		if q := c.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "1Gi" {
			t.Errorf("the member's own claim theirs was resized to %s", q.String())
		}
	})

	step("host resize 1Gi → 3Gi follows to the member's claim", func(t *testing.T) {
		start := time.Now()
		s.grow(t, hc, "3Gi")
		waitFor(t, "the member's claim asks for 3Gi", func() error {
			c, err := ma.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got := c.Spec.Resources.Requests[corev1.ResourceStorage]; got.String() != "3Gi" {
				return fmt.Errorf("member claim asks for %s", got.String())
			}
			mc = c
			return nil
		})
		t.Logf("member claim resized %s after the host's", time.Since(start).Round(time.Millisecond))
	})

	step("the member's volume grew: the host's volume says so, the host claim not yet", func(t *testing.T) {
		pv, err := ma.CoreV1().PersistentVolumes().Get(ctx, "pvc-a1-1", metav1.GetOptions{})
		must(t, err)
		pv.Spec.Capacity[corev1.ResourceStorage] = resource.MustParse("3Gi")
		_, err = ma.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{})
		must(t, err)
		// The member's resizer: the volume is done, the file system not.
		mc.Status.AllocatedResources = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("3Gi")}
		mc.Status.Conditions = []corev1.PersistentVolumeClaimCondition{{Type: corev1.PersistentVolumeClaimFileSystemResizePending, Status: corev1.ConditionTrue}}
		mc, err = ma.CoreV1().PersistentVolumeClaims("shop").UpdateStatus(ctx, mc, metav1.UpdateOptions{})
		must(t, err)
		waitFor(t, "host volume at 3Gi, host claim resize pending", func() error {
			hpv, err := h.CoreV1().PersistentVolumes().Get(ctx, "kosmos-member-a.pvc-a1-1", metav1.GetOptions{})
			if err != nil {
				return err
			}
			c, err := h.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if hpv.Spec.Capacity.Storage().String() != "3Gi" || len(c.Status.Conditions) != 1 || c.Status.Conditions[0].Type != corev1.PersistentVolumeClaimFileSystemResizePending ||
				c.Status.AllocatedResources.Storage().String() != "3Gi" {
				return fmt.Errorf("host volume %v, host claim status %+v", hpv.Spec.Capacity, c.Status)
			}
			if c.Status.Capacity.Storage().String() != "1Gi" {
				t.Errorf("host claim capacity %s before the member claim's resize is done", c.Status.Capacity.Storage())
			}
			return nil
		})
	})

	step("the member claim's resize is done: the host claim follows", func(t *testing.T) {
		mc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("3Gi")}
		mc.Status.Conditions = nil
		_, err := ma.CoreV1().PersistentVolumeClaims("shop").UpdateStatus(ctx, mc, metav1.UpdateOptions{})
		must(t, err)
		waitFor(t, "host claim at 3Gi, no resize condition", func() error {
			c, err := h.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if c.Status.Capacity.Storage().String() != "3Gi" || len(c.Status.Conditions) != 0 {
				return fmt.Errorf("host claim status %+v", c.Status)
			}
			return nil
		})
	})

	step("host claim deleted after its pod: the member's claim goes too", func(t *testing.T) {
		zero := int64(0)
		must(t, h.CoreV1().Pods("shop").Delete(ctx, "db-0", metav1.DeleteOptions{GracePeriodSeconds: &zero}))
		must(t, h.CoreV1().PersistentVolumeClaims("shop").Delete(ctx, "data", metav1.DeleteOptions{}))
		must(t, h.CoreV1().PersistentVolumeClaims("shop").Delete(ctx, "theirs", metav1.DeleteOptions{}))
		waitFor(t, "the member's claim deleted", deleted(func() (metav1.Object, error) {
			return ma.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
		}))
		waitFor(t, "the host's reflected volume deleted", deleted(func() (metav1.Object, error) {
			return h.CoreV1().PersistentVolumes().Get(ctx, "kosmos-member-a.pvc-a1-1", metav1.GetOptions{})
		}))
		w.awaitPasses(t, 3)
		c, err := ma.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "theirs", metav1.GetOptions{})
		must(t, err)
		if c.DeletionTimestamp != nil {
			t.Errorf("the member's own claim theirs was deleted")
		}
		if _, err := ma.CoreV1().PersistentVolumes().Get(ctx, "pvc-a1-1", metav1.GetOptions{}); err != nil {
			t.Errorf("the member's own volume: %v", err)
		}
	})
}
