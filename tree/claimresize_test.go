package tree_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree"
)

// TestClaimResizeAndDeletion, on real control planes: a host claim used by
// a pod on a virtual node grows (spec.resources.requests.storage 1Gi →
// 3Gi) and the member's claim the tree created follows; when the member's
// volume has grown (the test plays the member's resizer), the host's
// reflected volume and the host claim's capacity say so. Deleting the host
// claim, after the pod is gone, deletes the member's claim. A member claim
// of the same name as another host claim, which the tree did not create,
// is neither resized nor deleted.
func TestClaimResizeAndDeletion(t *testing.T) {
	w := newWorld(t, nil, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-a"}, Spec: v1alpha1.ClusterObjectSpec{Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}})
	ctx := context.Background()
	h, ma := w.hostCS, w.members["member-a"]
	memberNodeObj(ctx, t, ma, "a1", "4")
	w.run(10 * time.Second)
	step := steps(t)
	class := "fast"
	claim := func(name, size string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: &class,
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}}}
	}
	grow := func(c *corev1.PersistentVolumeClaim, size string) {
		t.Helper()
		c.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse(size)
		_, err := h.CoreV1().PersistentVolumeClaims("shop").Update(ctx, c, metav1.UpdateOptions{})
		must(t, err)
	}
	var hc, mc *corev1.PersistentVolumeClaim

	step("a pod's claim bound in the member and the host", func(t *testing.T) {
		expand := true
		for _, sc := range []func(context.Context, *storagev1.StorageClass, metav1.CreateOptions) (*storagev1.StorageClass, error){
			h.StorageV1().StorageClasses().Create, ma.StorageV1().StorageClasses().Create,
		} {
			_, err := sc(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: class}, Provisioner: "example.com/fast", AllowVolumeExpansion: &expand}, metav1.CreateOptions{})
			must(t, err)
		}
		_, err := h.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{tree.LabelTreeTokens: tree.TreeTokensEnabled}}}, metav1.CreateOptions{})
		must(t, err)
		_, err = h.CoreV1().ServiceAccounts("shop").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
		must(t, err)
		hc, err = h.CoreV1().PersistentVolumeClaims("shop").Create(ctx, claim("data", "1Gi"), metav1.CreateOptions{})
		must(t, err)
		waitFor(t, "the virtual node", wantReady(ctx, h, "kosmos-member-a", corev1.ConditionTrue))
		p := hostPod("shop", "db-0", "kosmos-member-a")
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}})
		_, err = h.CoreV1().Pods("shop").Create(ctx, p, metav1.CreateOptions{})
		must(t, err)
		waitFor(t, "the claim in the member", func() error {
			mc, err = ma.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
			return err
		})
		// The member's provisioner: a volume on a1, bound to the claim.
		_, err = ma.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-a1-1"}, Spec: corev1.PersistentVolumeSpec{
			Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}, StorageClassName: class,
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			ClaimRef:                      &corev1.ObjectReference{Namespace: "shop", Name: "data", UID: mc.UID},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/member/pvc-a1-1"}},
		}}, metav1.CreateOptions{})
		must(t, err)
		mc.Spec.VolumeName = "pvc-a1-1"
		mc, err = ma.CoreV1().PersistentVolumeClaims("shop").Update(ctx, mc, metav1.UpdateOptions{})
		must(t, err)
		mc.Status.Phase, mc.Status.Capacity = corev1.ClaimBound, corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
		_, err = ma.CoreV1().PersistentVolumeClaims("shop").UpdateStatus(ctx, mc, metav1.UpdateOptions{})
		must(t, err)
		waitFor(t, "the host claim bound", func() error {
			hc, err = h.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
			if err == nil && hc.Status.Phase != corev1.ClaimBound {
				return fmt.Errorf("host claim %s", hc.Status.Phase)
			}
			return err
		})
	})

	step("a claim the tree did not create stays as it is", func(t *testing.T) {
		// Both bound, so that either could be resized.
		for _, cs := range []kubernetes.Interface{ma, h} {
			c, err := cs.CoreV1().PersistentVolumeClaims("shop").Create(ctx, claim("theirs", "1Gi"), metav1.CreateOptions{})
			must(t, err)
			c.Status.Phase = corev1.ClaimBound
			_, err = cs.CoreV1().PersistentVolumeClaims("shop").UpdateStatus(ctx, c, metav1.UpdateOptions{})
			must(t, err)
		}
	})

	step("host resize 1Gi → 3Gi follows to the member's claim", func(t *testing.T) {
		start := time.Now()
		grow(hc, "3Gi")
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

	step("the member's volume grew: the host's volume and claim say so", func(t *testing.T) {
		pv, err := ma.CoreV1().PersistentVolumes().Get(ctx, "pvc-a1-1", metav1.GetOptions{})
		must(t, err)
		pv.Spec.Capacity[corev1.ResourceStorage] = resource.MustParse("3Gi")
		_, err = ma.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{})
		must(t, err)
		mc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("3Gi")}
		_, err = ma.CoreV1().PersistentVolumeClaims("shop").UpdateStatus(ctx, mc, metav1.UpdateOptions{})
		must(t, err)
		waitFor(t, "host volume and claim at 3Gi", func() error {
			hpv, err := h.CoreV1().PersistentVolumes().Get(ctx, "kosmos-member-a.pvc-a1-1", metav1.GetOptions{})
			if err != nil {
				return err
			}
			c, err := h.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if hpv.Spec.Capacity.Storage().String() != "3Gi" || c.Status.Capacity.Storage().String() != "3Gi" {
				return fmt.Errorf("host volume %v, host claim %v", hpv.Spec.Capacity, c.Status.Capacity)
			}
			return nil
		})
	})

	step("host claim deleted after its pod: the member's claim goes too", func(t *testing.T) {
		zero := int64(0)
		theirs, err := h.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "theirs", metav1.GetOptions{})
		must(t, err)
		grow(theirs, "5Gi")
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
		if c.DeletionTimestamp != nil || c.Spec.Resources.Requests.Storage().String() != "1Gi" {
			t.Errorf("the member's own claim theirs was touched: deleting %v, asks for %s", c.DeletionTimestamp, c.Spec.Resources.Requests.Storage())
		}
		if _, err := ma.CoreV1().PersistentVolumes().Get(ctx, "pvc-a1-1", metav1.GetOptions{}); err != nil {
			t.Errorf("the member's own volume: %v", err)
		}
	})
}
