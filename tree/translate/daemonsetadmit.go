// This file decides whether a host DaemonSet may run in the members. A
// DaemonSet's template is not a pod: the host's pod admission (Pod
// Security only warns on workloads, webhooks often watch pods only) never
// judged it, and the member's pods are made by the member's own DaemonSet
// controller, so nothing in the host would ever refuse a privileged
// hostPath DaemonSet written by a tenant. Hence three gates, each the
// admin's or the host's, never the tenant's alone:
//
//   - the host namespace opts in (LabelMemberDaemonSets=enabled, set by
//     the admin, like kosmos.io/tree-tokens for host tokens);
//   - a Pod built from the template (DaemonSetDryRunPod) passes the host's
//     admission in that namespace as a server-side dry run;
//   - the member namespace the tree creates carries the host namespace's
//     Pod Security labels (PodSecurityLabels), so the member's admission
//     applies the same level to the pods its controller makes.

package translate

import (
	"fmt"
	"maps"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// LabelMemberDaemonSets on a host namespace, with value
	// MemberDaemonSetsEnabled, lets that namespace's DaemonSets annotated
	// AnnotationMemberDaemonSet run in the members.
	LabelMemberDaemonSets = "kosmos.io/member-daemonsets"
	// MemberDaemonSetsEnabled is the value of LabelMemberDaemonSets that
	// opts in.
	MemberDaemonSetsEnabled = "enabled"
	// PodSecurityLabelPrefix starts the Pod Security admission labels of a
	// namespace (enforce, audit, warn and their versions).
	PodSecurityLabelPrefix = "pod-security.kubernetes.io/"
)

// MemberDaemonSetNamespace says why the DaemonSets of host namespace ns
// may not run in members (nil: they may): the namespace must carry
// LabelMemberDaemonSets=enabled.
func MemberDaemonSetNamespace(ns *corev1.Namespace) error {
	if ns == nil {
		return fmt.Errorf("its host namespace is not known")
	}
	if ns.Labels[LabelMemberDaemonSets] != MemberDaemonSetsEnabled {
		return fmt.Errorf("host namespace %s has not opted in to DaemonSets in member clusters; an admin enables it with: kubectl label namespace %s %s=%s (and binds the kosmos-tree-daemonsets ClusterRole there)",
			ns.Name, ns.Name, LabelMemberDaemonSets, MemberDaemonSetsEnabled)
	}
	return nil
}

// DaemonSetDryRunPod is the pod host DaemonSet ds's template describes,
// as the host's admission would see one of its pods (namespace, labels,
// annotations, spec), to be created with dryRun=All: a generated name, no
// UID, no node (admission judges the pod, not its placement).
func DaemonSetDryRunPod(ds *appsv1.DaemonSet) *corev1.Pod {
	yes := true
	p := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ds.Namespace, GenerateName: ds.Name + "-",
			Labels: maps.Clone(ds.Spec.Template.Labels), Annotations: maps.Clone(ds.Spec.Template.Annotations),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID, Controller: &yes}}},
		Spec: *ds.Spec.Template.Spec.DeepCopy(),
	}
	p.Spec.NodeName = ""
	return p
}

// PodSecurityLabels returns the labels of a member namespace the tree
// created (member) with the host namespace's Pod Security labels (host):
// every pod-security.kubernetes.io/ label set as the host's, those the
// host lacks removed, other labels kept; and whether that changed them.
func PodSecurityLabels(host, member map[string]string) (map[string]string, bool) {
	out := maps.Clone(member)
	if out == nil {
		out = map[string]string{}
	}
	changed := false
	for k := range out {
		if _, ok := host[k]; strings.HasPrefix(k, PodSecurityLabelPrefix) && !ok {
			delete(out, k)
			changed = true
		}
	}
	for k, v := range host {
		if strings.HasPrefix(k, PodSecurityLabelPrefix) && out[k] != v {
			out[k] = v
			changed = true
		}
	}
	return out, changed
}
