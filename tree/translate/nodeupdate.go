// This file compares a virtual node the tree wants with the one the host
// holds and says what to write: the tree owns its labels (those named in
// AnnotationOwnLabels), annotations, taints other than the host's
// node.kubernetes.io/* ones, and the status fields it reports; labels and
// taints others add stay.

package translate

import (
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeInfo stamps want (a node from VirtualNodes) with what every virtual
// node reports: the managed-by label, the node info and, when nodeIP is
// set, the kubelet endpoint (nodeIP:port).
func NodeInfo(want *corev1.Node, nodeIP string, port int32) {
	want.Labels[LabelManagedBy] = ManagedBy
	if nodeIP != "" {
		// Only the InternalIP: the host's API server prefers a Hostname
		// address, which no resolver knows for a virtual node.
		want.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: nodeIP}}
		want.Status.DaemonEndpoints.KubeletEndpoint.Port = port
	}
	want.Status.NodeInfo = corev1.NodeSystemInfo{KubeletVersion: "kosmos-tree",
		OperatingSystem: want.Labels[corev1.LabelOSStable], Architecture: want.Labels[corev1.LabelArchStable]}
}

// NodeUpdate returns have with want's labels, annotations and taints, and
// true, when they differ from what have shows; have itself and false
// otherwise. Labels the tree set before (AnnotationOwnLabels) and no
// longer wants go; labels and host taints others added stay; the tree's
// own cordon (Cordon: its cluster was leaving and is back) is lifted.
// Neither argument is modified.
func NodeUpdate(want, have *corev1.Node) (*corev1.Node, bool) {
	annotations := maps.Clone(want.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationOwnLabels] = strings.Join(slices.Sorted(maps.Keys(want.Labels)), ",")
	var stale []string
	for _, k := range strings.Split(have.Annotations[AnnotationOwnLabels], ",") {
		if _, keep := want.Labels[k]; !keep && k != "" && have.Labels[k] != "" {
			stale = append(stale, k)
		}
	}
	_, cordoned := have.Annotations[AnnotationCordoned]
	if !cordoned && len(stale) == 0 && subset(want.Labels, have.Labels) && subset(annotations, have.Annotations) && taintsEqual(want.Spec.Taints, ownTaints(have.Spec.Taints)) {
		return have, false
	}
	up := have.DeepCopy()
	up.Labels, up.Annotations = merge(up.Labels, want.Labels), merge(up.Annotations, annotations)
	for _, k := range stale {
		delete(up.Labels, k)
	}
	up.Spec.Taints = append(slices.Clone(want.Spec.Taints), hostTaints(have.Spec.Taints)...)
	uncordon(up)
	return up, true
}

// NodeStatusUpdate returns have with want's capacity, allocatable,
// addresses, kubelet endpoint and node info, and the Ready condition cond
// (unless nil), and true, when have shows something else; have and false
// otherwise. Neither argument is modified.
func NodeStatusUpdate(want, have *corev1.Node, cond *corev1.NodeCondition) (*corev1.Node, bool) {
	changed := !resourcesEqual(have.Status.Allocatable, want.Status.Allocatable) || !slices.Equal(have.Status.Addresses, want.Status.Addresses) ||
		have.Status.DaemonEndpoints != want.Status.DaemonEndpoints || have.Status.NodeInfo.KubeletVersion != want.Status.NodeInfo.KubeletVersion
	setCond := cond != nil && conditionChanged(have.Status.Conditions, cond)
	if !changed && !setCond {
		return have, false
	}
	up := have.DeepCopy()
	if setCond {
		SetNodeCondition(&up.Status, *cond)
	}
	up.Status.Capacity, up.Status.Allocatable = want.Status.Capacity, want.Status.Allocatable
	up.Status.Addresses, up.Status.DaemonEndpoints, up.Status.NodeInfo = want.Status.Addresses, want.Status.DaemonEndpoints, want.Status.NodeInfo
	return up, true
}

// Unreachable returns n with its Ready condition Unknown (the member
// cannot be reached), and true; n and false when it already shows that.
// n is not modified.
func Unreachable(n *corev1.Node, now metav1.Time) (*corev1.Node, bool) {
	for _, cd := range n.Status.Conditions {
		if cd.Type == corev1.NodeReady && cd.Status == corev1.ConditionUnknown {
			return n, false
		}
	}
	up := n.DeepCopy()
	SetNodeCondition(&up.Status, corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "MemberUnreachable",
		Message: "the member cluster cannot be reached", LastHeartbeatTime: now, LastTransitionTime: now})
	return up, true
}

// SetNodeCondition sets cond in st, keeping the last transition time when
// the status is unchanged.
func SetNodeCondition(st *corev1.NodeStatus, cond corev1.NodeCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == cond.Type {
			if st.Conditions[i].Status == cond.Status {
				cond.LastTransitionTime = st.Conditions[i].LastTransitionTime
			}
			st.Conditions[i] = cond
			return
		}
	}
	st.Conditions = append(st.Conditions, cond)
}

func conditionChanged(have []corev1.NodeCondition, cond *corev1.NodeCondition) bool {
	for _, h := range have {
		if h.Type == cond.Type {
			return h.Status != cond.Status || h.Reason != cond.Reason
		}
	}
	return true
}

func resourcesEqual(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, q := range a {
		if o, ok := b[k]; !ok || o.Cmp(q) != 0 {
			return false
		}
	}
	return true
}

func taintsEqual(a, b []corev1.Taint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].MatchTaint(&b[i]) || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}

// hostTaints are the taints the host's node lifecycle adds itself (not
// ready, unreachable); the tree keeps them and never writes its own.
func hostTaints(have []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range have {
		if strings.HasPrefix(t.Key, "node.kubernetes.io/") {
			out = append(out, t)
		}
	}
	return out
}

// ownTaints is have's taints without the host's own.
func ownTaints(have []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range have {
		if !strings.HasPrefix(t.Key, "node.kubernetes.io/") {
			out = append(out, t)
		}
	}
	return out
}

func subset(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// merge copies from into into (made when nil) and returns it.
func merge(into, from map[string]string) map[string]string {
	if into == nil {
		into = map[string]string{}
	}
	maps.Copy(into, from)
	return into
}
