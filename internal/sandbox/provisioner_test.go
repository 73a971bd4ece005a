package sandbox

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestProvisionNode(t *testing.T) {
	classes := map[string]*storagev1.StorageClass{}
	for _, c := range storageClasses() {
		classes[c.Name] = c
	}
	claim := func(ann map[string]string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "data-db-0", Annotations: ann}}
	}
	consumer := func(ns, node string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-0"}, Spec: corev1.PodSpec{NodeName: node,
			Volumes: []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-db-0"}}}}}}
	}
	for _, tc := range []struct {
		name  string
		claim *corev1.PersistentVolumeClaim
		class string
		pods  []*corev1.Pod
		want  string
		ok    bool
	}{
		{"selected node wins", claim(map[string]string{annSelectedNode: "m-2"}), StorageClassWFFC, []*corev1.Pod{consumer("shop", "m-1")}, "m-2", true},
		{"wffc: the consumer's machine", claim(nil), StorageClassWFFC, []*corev1.Pod{consumer("shop", "m-2")}, "m-2", true},
		{"wffc: consumer not bound yet", claim(nil), StorageClassWFFC, []*corev1.Pod{consumer("shop", "")}, "", false},
		{"wffc: a pod of another namespace is no consumer", claim(nil), StorageClassWFFC, []*corev1.Pod{consumer("other", "m-2")}, "", false},
		{"immediate: no machine", claim(nil), StorageClassImmediate, nil, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, _ := provisionNode(tc.claim, classes[tc.class], tc.pods)
			if got != tc.want || ok != tc.ok {
				t.Errorf("provisionNode = %q %v, want %q %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if v := volumeFor(&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{UID: "u2"}}, classes[StorageClassImmediate], "", "/vol"); v.Spec.NodeAffinity != nil {
		t.Errorf("an Immediate volume is pinned: %+v", v.Spec.NodeAffinity)
	}
	v := volumeFor(&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "c", UID: "u1"}}, classes[StorageClassWFFC], "m-1", "/vol")
	if v.Name != "pvc-u1" || v.Spec.ClaimRef.UID != "u1" || v.Spec.HostPath.Path != "/vol/pvc-u1" || v.Spec.StorageClassName != StorageClassWFFC ||
		v.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values[0] != "m-1" || v.Annotations[annProvisionedBy] != ProvisionerName {
		t.Errorf("volumeFor: %+v", v)
	}
}
