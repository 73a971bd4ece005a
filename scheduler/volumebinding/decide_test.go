package volumebinding_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/scheduler/volumebinding"
	"kosmos.io/kosmos/schema/v1alpha1"
)

func virtual(cluster, classes string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kosmos-" + cluster,
		Labels: map[string]string{v1alpha1.LabelCluster: cluster}, Annotations: map[string]string{}}}
	if classes != "" {
		n.Annotations[v1alpha1.AnnotationStorageClasses] = classes
	}
	return n
}

// hostPV is a volume pinned to cluster's virtual nodes, as the tree
// reflects it.
func hostPV(cluster string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{NodeAffinity: &corev1.VolumeNodeAffinity{
		Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: v1alpha1.LabelCluster, Operator: corev1.NodeSelectorOpIn, Values: []string{cluster}},
		}}}},
	}}}
}

func TestFitsVirtual(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims []volumebinding.Claim
		node   *corev1.Node
		fits   bool
	}{
		{"no claims", nil, virtual("a", ""), true},
		{"unbound, class offered", []volumebinding.Claim{{Name: "ns/c", Class: "fast"}}, virtual("a", "fast,slow"), true},
		{"unbound, class not offered", []volumebinding.Claim{{Name: "ns/c", Class: "fast"}}, virtual("a", "slow"), false},
		{"unbound, node offers nothing", []volumebinding.Claim{{Name: "ns/c", Class: "fast"}}, virtual("a", ""), false},
		{"unbound, no class", []volumebinding.Claim{{Name: "ns/c"}}, virtual("a", "fast"), false},
		{"claim missing", []volumebinding.Claim{{Name: "ns/c", Missing: true}}, virtual("a", "fast"), false},
		{"bound to this cluster's volume", []volumebinding.Claim{{Name: "ns/c", VolumeName: "v", Volume: hostPV("a")}}, virtual("a", ""), true},
		{"bound to another cluster's volume", []volumebinding.Claim{{Name: "ns/c", VolumeName: "v", Volume: hostPV("b")}}, virtual("a", "fast"), false},
		{"bound, volume not in the host", []volumebinding.Claim{{Name: "ns/c", VolumeName: "v"}}, virtual("a", "fast"), false},
		{"one of two not offered", []volumebinding.Claim{{Name: "ns/c", Class: "fast"}, {Name: "ns/d", Class: "gold"}}, virtual("a", "fast"), false},
		{"spaces in the annotation", []volumebinding.Claim{{Name: "ns/c", Class: "gold"}}, virtual("a", "fast, gold"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason := volumebinding.FitsVirtual(tc.claims, tc.node)
			if (reason == "") != tc.fits {
				t.Errorf("FitsVirtual = %q, want fits=%v", reason, tc.fits)
			}
		})
	}
}

func TestStorageClassesAnnotation(t *testing.T) {
	if got := v1alpha1.FormatStorageClasses([]string{"slow", "", "fast", "slow"}); got != "fast,slow" {
		t.Errorf("FormatStorageClasses = %q", got)
	}
	if got := v1alpha1.ParseStorageClasses(""); len(got) != 0 {
		t.Errorf("ParseStorageClasses(\"\") = %v", got)
	}
}
