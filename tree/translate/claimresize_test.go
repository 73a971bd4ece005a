package translate

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestClaimResize(t *testing.T) {
	claim := func(size string, phase corev1.PersistentVolumeClaimPhase) *corev1.PersistentVolumeClaim {
		c := &corev1.PersistentVolumeClaim{Status: corev1.PersistentVolumeClaimStatus{Phase: phase}}
		if size != "" {
			c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}
		}
		return c
	}
	for _, tc := range []struct {
		name       string
		host, copy *corev1.PersistentVolumeClaim
		want       string // "" when nothing changes
	}{
		{"host grew", claim("3Gi", corev1.ClaimBound), claim("1Gi", corev1.ClaimBound), "3Gi"},
		{"host grew, other units", claim("1500Mi", corev1.ClaimBound), claim("1Gi", corev1.ClaimBound), "1500Mi"},
		{"same size", claim("1Gi", corev1.ClaimBound), claim("1Gi", corev1.ClaimBound), ""},
		{"same size, other units", claim("1024Mi", corev1.ClaimBound), claim("1Gi", corev1.ClaimBound), ""},
		{"host smaller: never shrink", claim("1Gi", corev1.ClaimBound), claim("2Gi", corev1.ClaimBound), ""},
		{"copy not bound yet", claim("3Gi", corev1.ClaimBound), claim("1Gi", corev1.ClaimPending), ""},
		{"host has no request", claim("", corev1.ClaimBound), claim("1Gi", corev1.ClaimBound), ""},
		{"copy has no request", claim("1Gi", corev1.ClaimBound), claim("", corev1.ClaimBound), "1Gi"},
		{"no copy", claim("1Gi", corev1.ClaimBound), nil, ""},
		{"no host claim", nil, claim("1Gi", corev1.ClaimBound), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ClaimResize(tc.host, tc.copy)
			if (tc.want == "") == ok || (ok && got.String() != tc.want) {
				t.Errorf("ClaimResize = %s, %v; want %q", got.String(), ok, tc.want)
			}
		})
	}
}

func TestCopiesClaim(t *testing.T) {
	host := &corev1.PersistentVolumeClaim{}
	host.UID = "host-2"
	copyOf := func(uid string, set bool) *corev1.PersistentVolumeClaim {
		c := &corev1.PersistentVolumeClaim{}
		if set {
			c.Annotations = map[string]string{AnnotationHostClaimUID: uid}
		}
		return c
	}
	for _, tc := range []struct {
		name string
		hc   *corev1.PersistentVolumeClaim
		mc   *corev1.PersistentVolumeClaim
		want bool
	}{
		{"same UID", host, copyOf("host-2", true), true},
		{"host claim recreated", host, copyOf("host-1", true), false},
		{"empty UID recorded", host, copyOf("", true), false},
		{"copy from before UIDs: by name", host, copyOf("", false), true},
		{"no host claim", nil, copyOf("host-2", true), false},
		{"no copy", host, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CopiesClaim(tc.hc, tc.mc); got != tc.want {
				t.Errorf("CopiesClaim = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHostClaimStatus(t *testing.T) {
	gi := func(s string) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(s)}
	}
	rwo := []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	pv := &corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{Capacity: gi("3Gi"), AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}}}
	resizing := corev1.PersistentVolumeClaimCondition{Type: corev1.PersistentVolumeClaimResizing, Status: corev1.ConditionTrue}
	fsPending := corev1.PersistentVolumeClaimCondition{Type: corev1.PersistentVolumeClaimFileSystemResizePending, Status: corev1.ConditionTrue}
	other := corev1.PersistentVolumeClaimCondition{Type: "ModifyingVolume", Status: corev1.ConditionTrue}
	for _, tc := range []struct {
		name   string
		hc, mc corev1.PersistentVolumeClaimStatus
		want   corev1.PersistentVolumeClaimStatus
	}{
		{"volume grew, member claim not yet: the claim's size",
			corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: gi("1Gi"), AccessModes: rwo},
			corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: gi("1Gi"), AccessModes: rwo, AllocatedResources: gi("3Gi"), Conditions: []corev1.PersistentVolumeClaimCondition{fsPending}},
			corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: gi("1Gi"), AccessModes: rwo, AllocatedResources: gi("3Gi"), Conditions: []corev1.PersistentVolumeClaimCondition{fsPending}}},
		{"resize done: conditions cleared, others kept",
			corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: gi("1Gi"), Conditions: []corev1.PersistentVolumeClaimCondition{other, resizing}},
			corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: gi("3Gi"), AccessModes: rwo},
			corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: gi("3Gi"), AccessModes: rwo, Conditions: []corev1.PersistentVolumeClaimCondition{other}}},
		{"pending host claim, member claim without status: the volume's",
			corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
			corev1.PersistentVolumeClaimStatus{},
			corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: gi("3Gi"), AccessModes: pv.Spec.AccessModes}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := HostClaimStatus(&corev1.PersistentVolumeClaim{Status: tc.hc}, &corev1.PersistentVolumeClaim{Status: tc.mc}, pv)
			if !equality.Semantic.DeepEqual(got, tc.want) {
				t.Errorf("HostClaimStatus =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}
