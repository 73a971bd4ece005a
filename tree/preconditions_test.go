package tree

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"kosmos.io/kosmos/internal/testinfra/testenv"
)

// TestRemoveHostPVChecksUID: the reflected volume the tree collects is
// deleted only while it is the object the tree saw; one recreated under
// its name since (the cache still shows the old one) stays. Real API
// server.
func TestRemoveHostPVChecksUID(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{Names: []string{"host"}})
	cs := kubernetes.NewForConfigOrDie(env.Cluster("host").Config)
	ctx := context.Background()
	pv := func() *corev1.PersistentVolume {
		return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "kosmos-member-a-pvc-1"}, Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/x"}},
		}}
	}
	stale, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().PersistentVolumes().Delete(ctx, stale.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// pv-protection holds it; no controller-manager here releases it.
	if _, err := cs.CoreV1().PersistentVolumes().Patch(ctx, stale.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	fresh, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := &Controller{hostCS: cs}
	if err := c.removeHostPV(ctx, stale); err != nil {
		t.Fatalf("removeHostPV: %v", err)
	}
	got, err := cs.CoreV1().PersistentVolumes().Get(ctx, fresh.Name, metav1.GetOptions{})
	if err != nil || got.UID != fresh.UID || got.DeletionTimestamp != nil {
		t.Fatalf("the volume recreated under the name was deleted for the old one (%v)", err)
	}
	if err := c.removeHostPV(ctx, got); err != nil {
		t.Fatalf("removeHostPV: %v", err)
	}
	if got, err := cs.CoreV1().PersistentVolumes().Get(ctx, fresh.Name, metav1.GetOptions{}); err == nil && got.DeletionTimestamp == nil {
		t.Error("the volume the tree saw was not deleted")
	}
}
