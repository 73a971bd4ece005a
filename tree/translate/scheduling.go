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
//     Gt or Lt) are refused; NotIn and DoesNotExist (steering away) pass;
//   - a OneToOne copy, pinned to its member node past the member's
//     scheduler, is refused when that node has a NoSchedule or NoExecute
//     taint the copy does not tolerate (node.kubernetes.io/ condition
//     taints aside).
//
// A refused annotation refuses the pod (an event says why); a toleration
// of the host pod's own spec that is not allowed is dropped from the copy,
// for it was written against the host's taints, not the member's.

package translate

import (
	"fmt"
	"slices"
	"strings"

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

// checkPinned refuses to pin a copy (OneToOne: nodeName set, past the
// member's scheduler and its taint checks) to a member node with a
// NoSchedule or NoExecute taint the copy's tolerations do not tolerate
// (but for the node.kubernetes.io/ taints of the node's conditions):
// binding a host pod to a virtual node must not reach a member node the
// member's own scheduler would keep it from (its control planes, say).
func checkPinned(tolerations []corev1.Toleration, o PodOptions) error {
	if o.MemberNode == "" {
		return nil
	}
	for _, taint := range o.MemberNodeTaints {
		if taint.Effect == corev1.TaintEffectPreferNoSchedule || strings.HasPrefix(taint.Key, "node.kubernetes.io/") {
			continue // a preference, or the node's health (the kubelet's and node lifecycle's business)
		}
		if !slices.ContainsFunc(tolerations, func(t corev1.Toleration) bool { return tolerates(t, taint) }) {
			return fmt.Errorf("member node %s has the taint %s:%s, which the pod does not tolerate (in the member, only keys of tree.memberTolerations can be)", o.MemberNode, taint.Key, taint.Effect)
		}
	}
	return nil
}

// tolerates tells whether t tolerates taint, as the scheduler matches
// them: same effect (or none), same key (or the empty key with Exists),
// and Exists or an equal value.
func tolerates(t corev1.Toleration, taint corev1.Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != taint.Key && (t.Key != "" || t.Operator != corev1.TolerationOpExists) {
		return false
	}
	return t.Operator == corev1.TolerationOpExists || t.Value == taint.Value
}

// allowedTolerations keeps the tolerations the member allows.
func allowedTolerations(in []corev1.Toleration, allowed []string) []corev1.Toleration {
	return slices.DeleteFunc(in, func(t corev1.Toleration) bool { return !TolerationAllowed(t, allowed) })
}
