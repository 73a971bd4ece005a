package translate

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnnotationCordoned marks a virtual node the tree made unschedulable
// because its member is leaving the tree; only such a cordon is ever
// lifted by the tree (a cluster that comes back), never an admin's.
const AnnotationCordoned = "kosmos.io/cordoned"

// Cordon returns a copy of have marked unschedulable by the tree, and true;
// have and false when it is unschedulable already (by whoever).
func Cordon(have *corev1.Node) (*corev1.Node, bool) {
	if have.Spec.Unschedulable {
		return have, false
	}
	up := have.DeepCopy()
	up.Spec.Unschedulable = true
	if up.Annotations == nil {
		up.Annotations = map[string]string{}
	}
	up.Annotations[AnnotationCordoned] = "true"
	return up, true
}

// uncordon lifts the tree's own cordon from up (a copy the caller owns);
// it reports whether there was one.
func uncordon(up *corev1.Node) bool {
	if _, ok := up.Annotations[AnnotationCordoned]; !ok {
		return false
	}
	delete(up.Annotations, AnnotationCordoned)
	up.Spec.Unschedulable = false
	return true
}

// Drain is what leaving a virtual node takes, decided over the host pods
// bound to it.
type Drain struct {
	// Evict are the pods to evict now (through the host's Eviction API, so
	// PodDisruptionBudgets apply).
	Evict []*corev1.Pod
	// Remaining counts the pods that keep the node: the ones to evict and
	// those already terminating, which the pod sync releases once their
	// member copies have ended.
	Remaining int
}

// DrainNode decides which of pods (the host pods bound to one virtual
// node) to evict. DaemonSet pods neither keep the node nor are evicted:
// they never run in members, and their controller removes them with the
// node. A finished pod is evicted too (no budget counts it), so its copy
// is collected before the node goes.
func DrainNode(pods []*corev1.Pod) Drain {
	var d Drain
	for _, p := range pods {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == "DaemonSet" {
			continue
		}
		d.Remaining++
		if p.DeletionTimestamp == nil {
			d.Evict = append(d.Evict, p)
		}
	}
	return d
}
