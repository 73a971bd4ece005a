// This file reflects member volumes into the host.

package translate

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// AnnotationMemberVolume names the member PersistentVolume a host volume
// reflects, as cluster/name.
const AnnotationMemberVolume = "kosmos.io/member-volume"

// HostPVName is the host's name for member volume pv of cluster,
// "kosmos-<cluster>.<pv>": unambiguous as virtual node names are
// (VirtualNodeName), so no cluster's volume takes another's name.
func HostPVName(cluster, pv string) string { return "kosmos-" + cluster + "." + pv }

// HostPV reflects member volume pv, bound to the member's copy of host
// claim hc, into the host: same capacity, access and source, reclaim
// policy Retain (the volume belongs to the member: deleting the
// reflection must not touch it), bound to hc, and node affinity rewritten
// from member nodes to the virtual nodes that stand for them: the
// cluster's one node in Aggregate mode, the mirrors of the member nodes
// the volume is pinned to in OneToOne mode (every mirror when it is not
// pinned); every virtual node of the cluster when it has node groups.
func HostPV(cluster *v1alpha1.Cluster, pv *corev1.PersistentVolume, hc *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
	out := &corev1.PersistentVolume{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolume"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        HostPVName(cluster.Name, pv.Name),
			Labels:      map[string]string{LabelManagedBy: ManagedBy, LabelCluster: cluster.Name},
			Annotations: map[string]string{AnnotationMemberVolume: cluster.Name + "/" + pv.Name},
		},
	}
	spec := pv.Spec.DeepCopy()
	spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	spec.ClaimRef = &corev1.ObjectReference{APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: hc.Namespace, Name: hc.Name, UID: hc.UID}
	spec.StorageClassName = ""
	if hc.Spec.StorageClassName != nil {
		spec.StorageClassName = *hc.Spec.StorageClassName
	}
	var req corev1.NodeSelectorRequirement
	switch {
	case cluster.Spec.Tree.Mode != v1alpha1.TreeOneToOne && len(cluster.Spec.Tree.NodeGroups) > 0:
		// Node groups: the member's own affinity says where the volume is;
		// any of the cluster's virtual nodes may stand for it.
		req = corev1.NodeSelectorRequirement{Key: LabelCluster, Operator: corev1.NodeSelectorOpIn, Values: []string{cluster.Name}}
	case cluster.Spec.Tree.Mode == v1alpha1.TreeOneToOne:
		if pinned := pinnedNodes(pv); len(pinned) > 0 {
			vals := make([]string, len(pinned))
			for i, n := range pinned {
				vals[i] = VirtualNodeName(cluster.Name, n)
			}
			req = corev1.NodeSelectorRequirement{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: vals}
		} else {
			req = corev1.NodeSelectorRequirement{Key: LabelCluster, Operator: corev1.NodeSelectorOpIn, Values: []string{cluster.Name}}
		}
	default:
		req = corev1.NodeSelectorRequirement{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{VirtualNodeName(cluster.Name, "")}}
	}
	spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{req}}}}}
	out.Spec = *spec
	return out
}

// pinnedNodes lists the hostnames a volume's node affinity names, sorted.
func pinnedNodes(pv *corev1.PersistentVolume) []string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return nil
	}
	var out []string
	for _, t := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, e := range t.MatchExpressions {
			if e.Key == corev1.LabelHostname && e.Operator == corev1.NodeSelectorOpIn {
				out = append(out, e.Values...)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
