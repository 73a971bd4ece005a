// This file decides how a host claim's resize follows to the member's
// copy of it (tree/claimresize.go does it).

package translate

import (
	"maps"
	"slices"

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

// AnnotationHostClaimUID, on a member claim the tree created, is the UID
// of the host claim it copies: a host claim deleted and recreated under
// the same name is not the old copy's source (CopiesClaim).
const AnnotationHostClaimUID = "kosmos.io/host-claim-uid"

// CopiesClaim tells whether member claim mc is the tree's copy of host
// claim hc. A copy names its source's UID; one made before copies did
// (no annotation) is matched by name, as it was then.
func CopiesClaim(hc, mc *corev1.PersistentVolumeClaim) bool {
	if hc == nil || mc == nil {
		return false
	}
	uid, ok := mc.Annotations[AnnotationHostClaimUID]
	return !ok || uid == string(hc.UID)
}

// resizeConditions are the claim conditions of a resize in progress that
// the host claim takes from the member's copy: the host runs no resizer
// for a reflected volume, the member's says how far it got.
var resizeConditions = []corev1.PersistentVolumeClaimConditionType{
	corev1.PersistentVolumeClaimResizing, corev1.PersistentVolumeClaimFileSystemResizePending,
}

// HostClaimStatus is the status host claim hc should show while it is
// bound to the reflection of member volume pv that member claim mc holds:
// Bound, with the member claim's capacity, access modes, allocated
// resources and resize conditions (the volume's spec grows before the
// file system does; the claim's capacity says what the pod can use).
// Conditions of other types on hc are kept. The volume's capacity and
// access modes stand in only where the member claim has none.
func HostClaimStatus(hc, mc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) corev1.PersistentVolumeClaimStatus {
	st := *hc.Status.DeepCopy()
	st.Phase = corev1.ClaimBound
	st.Capacity, st.AccessModes = mc.Status.Capacity.DeepCopy(), slices.Clone(mc.Status.AccessModes)
	if len(st.Capacity) == 0 && pv != nil {
		st.Capacity = pv.Spec.Capacity.DeepCopy()
	}
	if len(st.AccessModes) == 0 && pv != nil {
		st.AccessModes = slices.Clone(pv.Spec.AccessModes)
	}
	st.AllocatedResources = mc.Status.AllocatedResources.DeepCopy()
	st.AllocatedResourceStatuses = maps.Clone(mc.Status.AllocatedResourceStatuses)
	st.Conditions = slices.DeleteFunc(st.Conditions, func(c corev1.PersistentVolumeClaimCondition) bool {
		return slices.Contains(resizeConditions, c.Type)
	})
	for _, c := range mc.Status.Conditions {
		if slices.Contains(resizeConditions, c.Type) {
			st.Conditions = append(st.Conditions, *c.DeepCopy())
		}
	}
	if len(st.Conditions) == 0 {
		st.Conditions = nil
	}
	return st
}
