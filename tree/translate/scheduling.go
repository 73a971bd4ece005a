// This file bounds what a pod author may ask of a member's scheduler. The
// kosmos.io/member-scheduling annotation is read by no admission of the
// host, and the member's admission sees only the tree's identity: left
// alone, any pod author could tolerate every taint of a member (its
// control-plane nodes' included) and select any of its nodes. So:
//
//   - a toleration reaches the member only for a taint key the member's
//     topology lists in tree.memberTolerations (none by default); the
//     empty-key wildcard and the control-plane role keys never do;
//   - node selectors and node affinity that pick control-plane nodes
//     (node-role.kubernetes.io/control-plane or /master, with In, Exists,
//     Gt or Lt) are refused; NotIn and DoesNotExist (steering away) pass.
//
// A refused annotation refuses the pod (an event says why); a toleration
// of the host pod's own spec that is not allowed is dropped from the copy,
// for it was written against the host's taints, not the member's.

package translate

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// ControlPlaneKeys are the node-role labels (and taint keys) of
// control-plane nodes: no pod from the host tolerates or selects them.
var ControlPlaneKeys = []string{"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"}

// TolerationAllowed tells whether a member copy may carry toleration t
// when the member allows the taint keys in allowed: the key is listed,
// and is neither empty (the tolerate-everything wildcard) nor a
// control-plane key.
func TolerationAllowed(t corev1.Toleration, allowed []string) bool {
	return t.Key != "" && !slices.Contains(ControlPlaneKeys, t.Key) && slices.Contains(allowed, t.Key)
}

// checkMemberScheduling refuses what the annotation may not ask: a
// toleration the member does not allow, or a node selector or affinity
// term that picks control-plane nodes.
func checkMemberScheduling(ms *MemberScheduling, allowed []string) error {
	for _, t := range ms.Tolerations {
		if !TolerationAllowed(t, allowed) {
			return fmt.Errorf("annotation %s: toleration of taint key %q is not allowed in this member (allowed: %v; the empty key and control-plane keys never are)",
				AnnotationMemberScheduling, t.Key, allowed)
		}
	}
	for k := range ms.NodeSelector {
		if slices.Contains(ControlPlaneKeys, k) {
			return fmt.Errorf("annotation %s: nodeSelector %s selects the member's control-plane nodes", AnnotationMemberScheduling, k)
		}
	}
	if ms.Affinity == nil || ms.Affinity.NodeAffinity == nil {
		return nil
	}
	na := ms.Affinity.NodeAffinity
	var terms []corev1.NodeSelectorTerm
	if na.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		terms = append(terms, na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms...)
	}
	for _, p := range na.PreferredDuringSchedulingIgnoredDuringExecution {
		terms = append(terms, p.Preference)
	}
	for _, term := range terms {
		for _, e := range term.MatchExpressions {
			if slices.Contains(ControlPlaneKeys, e.Key) && e.Operator != corev1.NodeSelectorOpNotIn && e.Operator != corev1.NodeSelectorOpDoesNotExist {
				return fmt.Errorf("annotation %s: node affinity %s %s selects the member's control-plane nodes", AnnotationMemberScheduling, e.Key, e.Operator)
			}
		}
	}
	return nil
}

// allowedTolerations keeps the tolerations the member allows.
func allowedTolerations(in []corev1.Toleration, allowed []string) []corev1.Toleration {
	return slices.DeleteFunc(in, func(t corev1.Toleration) bool { return !TolerationAllowed(t, allowed) })
}
