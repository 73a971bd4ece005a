package translate

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
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
