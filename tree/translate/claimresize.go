// This file decides how a host claim's resize follows to the member's
// copy of it (tree/claimresize.go does it).

package translate

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// ClaimResize is the storage request the member's copy mc of host claim
// hc should have after hc grew, and whether mc must change: only when hc
// asks for more than mc does, and only once mc is bound (a member's API
// server resizes bound claims only, and never shrinks one: a host claim
// smaller than its copy changes nothing). Claims without a storage
// request change nothing either.
func ClaimResize(hc, mc *corev1.PersistentVolumeClaim) (resource.Quantity, bool) {
	if hc == nil || mc == nil || mc.Status.Phase != corev1.ClaimBound {
		return resource.Quantity{}, false
	}
	want, ok := hc.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		return resource.Quantity{}, false
	}
	have, ok := mc.Spec.Resources.Requests[corev1.ResourceStorage]
	if ok && want.Cmp(have) <= 0 {
		return resource.Quantity{}, false
	}
	return want, true
}
