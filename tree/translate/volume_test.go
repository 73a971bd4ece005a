package translate

import (
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestHostPV reflects a member volume in each mode: Aggregate pins it to
// the cluster's node; OneToOne to the mirrors of the member nodes it is
// pinned to, or to every node of the cluster when it is not pinned.
func TestHostPV(t *testing.T) {
	class := "fast"
	hc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-data", UID: "6f1c2d4e-0000-4000-8000-0000000000aa"},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &class}}
	pinned := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-123"}, Spec: corev1.PersistentVolumeSpec{
		Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
		AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
		StorageClassName:              "member-local",
		ClaimRef:                      &corev1.ObjectReference{Namespace: "shop", Name: "web-data", UID: "member-uid"},
		PersistentVolumeSource:        corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/mnt/disks/1"}},
		NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"n2"}}}}}}},
	}}
	free := pinned.DeepCopy()
	free.Spec.NodeAffinity = nil
	for _, tc := range []struct {
		name string
		mode v1alpha1.TreeMode
		pv   *corev1.PersistentVolume
	}{
		{"aggregate", v1alpha1.TreeAggregate, pinned},
		{"onetoone-pinned", v1alpha1.TreeOneToOne, pinned},
		{"onetoone-free", v1alpha1.TreeOneToOne, free},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-b"}, Spec: v1alpha1.ClusterObjectSpec{Tree: v1alpha1.TreeSpec{Mode: tc.mode}}}
			got, err := yaml.Marshal(HostPV(c, tc.pv, hc))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "pv-"+tc.name+".golden.yaml"), got)
		})
	}
	grouped := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-b"}, Spec: v1alpha1.ClusterObjectSpec{Tree: v1alpha1.TreeSpec{
		Mode: v1alpha1.TreeAggregate, NodeGroups: []v1alpha1.NodeGroup{{Name: "gpu", NodeSelector: map[string]string{"accelerator": "nvidia"}}}}}}
	e := HostPV(grouped, pinned, hc).Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0]
	if e.Key != LabelCluster || e.Values[0] != "member-b" {
		t.Errorf("with node groups, a volume is pinned to %v, want every virtual node of the cluster", e)
	}
	if pinned.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Error("HostPV modified the member volume")
	}
}

// TestHostPVNameUnambiguous: two clusters' volumes never share a host name.
func TestHostPVNameUnambiguous(t *testing.T) {
	if a, b := HostPVName("a", "b-c"), HostPVName("a-b", "c"); a == b {
		t.Errorf("volumes of clusters a and a-b are both %q", a)
	}
}
