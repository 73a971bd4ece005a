// This file is the pure core of DaemonSets in members. A host DaemonSet
// whose pods would land on virtual nodes means nothing there: a virtual
// node is a whole cluster, not a machine. So DaemonSet pods bound to a
// virtual node are never copied (PodDaemonSet: the pod gets an event that
// says why), and a DaemonSet annotated AnnotationMemberDaemonSet="true"
// is run by each member as an equivalent DaemonSet of its own
// (MemberDaemonSet) once its namespace and the host's admission let it
// (daemonsetadmit.go): same namespace, name, selector and update strategy,
// its pod template given the member-side parts of a pod's translation
// (MemberPod: member-side scheduling, the tree's ServiceAccount, allowed
// tolerations; not the host's DNS nor service variables), marked as the
// tree's. Its pods are the member's pods, not copies of host pods:
// they carry no Kosmos marks, count against the virtual nodes' room like
// any member pod, and get no host API token (a bound token needs a host
// pod to be bound to). The members' counts are summed back
// (SumDaemonSets) into a condition of the host DaemonSet's status (the
// host's DaemonSet controller owns the numbers there and would overwrite
// them) and the annotation AnnotationMemberDaemonSetStatus.

package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// AnnotationMemberDaemonSet, "true" on a host DaemonSet, runs it in
	// every member of the tree as a DaemonSet of the member's nodes.
	AnnotationMemberDaemonSet = "kosmos.io/member-daemonset"
	// AnnotationHostDaemonSetUID is, on a member DaemonSet, the UID of the
	// host DaemonSet it stands for.
	AnnotationHostDaemonSetUID = "kosmos.io/host-daemonset-uid"
	// AnnotationMemberDaemonSetStatus is, on a host DaemonSet, the JSON
	// MemberDaemonSetStatus of its member DaemonSets.
	AnnotationMemberDaemonSetStatus = "kosmos.io/member-daemonset-status"
	// ConditionMemberDaemonSets is the host DaemonSet's condition that
	// sums its member DaemonSets.
	ConditionMemberDaemonSets appsv1.DaemonSetConditionType = "kosmos.io/MemberDaemonSets"
)

// MemberDaemonSetWanted tells whether host DaemonSet ds runs in members.
func MemberDaemonSetWanted(ds *appsv1.DaemonSet) bool {
	return ds.DeletionTimestamp == nil && ds.Annotations[AnnotationMemberDaemonSet] == "true"
}

// DaemonSetOf is the name of the DaemonSet that controls pod p, "" for
// none.
func DaemonSetOf(p *corev1.Pod) string {
	if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == "DaemonSet" && strings.HasPrefix(ref.APIVersion, "apps/") {
		return ref.Name
	}
	return ""
}

// DaemonSetPodMessage is the event for DaemonSet pod p bound to a virtual
// node, given its DaemonSet (nil when not found).
func DaemonSetPodMessage(p *corev1.Pod, ds *appsv1.DaemonSet, cluster string) string {
	if ds != nil && MemberDaemonSetWanted(ds) {
		return fmt.Sprintf("DaemonSet %s runs as a DaemonSet of member cluster %s on the member's own nodes; this pod, bound to virtual node %s, is not run there (stop it tolerating %s to keep it off virtual nodes)",
			ds.Name, cluster, p.Spec.NodeName, TaintLeaf)
	}
	return fmt.Sprintf("DaemonSet pods are not run in member clusters (virtual node %s is cluster %s, not a machine); annotate DaemonSet %s with %s: \"true\" (in a namespace an admin labelled %s=%s) to run it on every node of the members, or keep it off virtual nodes (do not tolerate %s)",
		p.Spec.NodeName, cluster, DaemonSetOf(p), AnnotationMemberDaemonSet, LabelMemberDaemonSets, MemberDaemonSetsEnabled, TaintLeaf)
}

// DaemonSetTemplatePod is the pod a DaemonSet's template describes, as
// dependencies and translation see it (namespace of the DaemonSet).
func DaemonSetTemplatePod(ds *appsv1.DaemonSet) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ds.Namespace, Name: ds.Name, UID: ds.UID,
		Labels: ds.Spec.Template.Labels, Annotations: ds.Spec.Template.Annotations}, Spec: *ds.Spec.Template.Spec.DeepCopy()}
}

// MemberDaemonSet translates host DaemonSet ds into the member's: marked
// as the tree's (LabelManagedBy, LabelOwner o.Owner, the host UID and a
// hash of what it carries), its pod template translated as MemberPod
// translates a pod (o without a virtual node's placement), with the
// template's own labels and annotations only, so that its pods are the
// member's and never taken for copies of host pods. The error says what
// cannot be carried over (what MemberPod refuses; a template that mounts
// the host's API token).
func MemberDaemonSet(ds *appsv1.DaemonSet, o PodOptions) (*appsv1.DaemonSet, error) {
	tp := DaemonSetTemplatePod(ds)
	for _, k := range []string{LabelOwner, LabelOrigin} {
		if _, ok := ds.Spec.Template.Labels[k]; ok {
			return nil, fmt.Errorf("DaemonSet %s/%s: its pod template carries the tree's label %s: its pods in members would pass for the tree's copies (remove the label)", ds.Namespace, ds.Name, k)
		}
	}
	if ds.Spec.Template.Labels[LabelManagedBy] == ManagedBy {
		return nil, fmt.Errorf("DaemonSet %s/%s: its pod template carries the tree's label %s=%s: its pods in members would pass for the tree's copies (remove the label)", ds.Namespace, ds.Name, LabelManagedBy, ManagedBy)
	}
	if slices.ContainsFunc(tp.Spec.Volumes, func(v corev1.Volume) bool { return isAPIAccess(&v) }) {
		return nil, fmt.Errorf("DaemonSet %s/%s mounts a service account token: DaemonSets in members get no host API token (set automountServiceAccountToken: false)", ds.Namespace, ds.Name)
	}
	// No host API either: without a token it would only refuse them.
	o.MemberNode, o.GroupSelector, o.AvoidGroups, o.HostAPIHost, o.HostAPIPort = "", nil, nil, "", ""
	mp, err := MemberPod(tp, o)
	if err != nil {
		return nil, fmt.Errorf("DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	ann := maps.Clone(ds.Spec.Template.Annotations)
	delete(ann, AnnotationMemberScheduling)
	out := &appsv1.DaemonSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ds.Namespace, Name: ds.Name,
			Labels:      map[string]string{LabelManagedBy: ManagedBy, LabelOwner: o.Owner},
			Annotations: map[string]string{AnnotationHostDaemonSetUID: string(ds.UID)}},
		Spec: appsv1.DaemonSetSpec{
			Selector:             ds.Spec.Selector.DeepCopy(),
			Template:             corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(ds.Spec.Template.Labels), Annotations: ann}, Spec: mp.Spec},
			UpdateStrategy:       *ds.Spec.UpdateStrategy.DeepCopy(),
			MinReadySeconds:      ds.Spec.MinReadySeconds,
			RevisionHistoryLimit: ds.Spec.RevisionHistoryLimit,
		},
	}
	raw, _ := json.Marshal(out.Spec) // plain data: cannot fail
	sum := sha256.Sum256(raw)
	out.Annotations[AnnotationHostSpec] = hex.EncodeToString(sum[:8])
	return out, nil
}

// MemberDaemonSetUpdate returns have carrying want's spec and marks when
// the host's side changed since have was written (its hash differs), and
// whether it did; what the member's own controllers changed is kept.
func MemberDaemonSetUpdate(want, have *appsv1.DaemonSet) (*appsv1.DaemonSet, bool) {
	if have.Annotations[AnnotationHostSpec] == want.Annotations[AnnotationHostSpec] && have.Annotations[AnnotationHostDaemonSetUID] == want.Annotations[AnnotationHostDaemonSetUID] {
		return have, false
	}
	up := have.DeepCopy()
	if up.Annotations == nil {
		up.Annotations = map[string]string{}
	}
	maps.Copy(up.Annotations, want.Annotations)
	up.Spec = want.Spec
	return up, true
}

// MemberDaemonSetRecreate tells whether member DaemonSet have must be
// deleted and created again to carry want: its selector differs, and a
// DaemonSet's selector is immutable.
func MemberDaemonSetRecreate(want, have *appsv1.DaemonSet) bool {
	return !equality.Semantic.DeepEqual(want.Spec.Selector, have.Spec.Selector)
}

// MemberDaemonSetStatus is the sum of a host DaemonSet's member
// DaemonSets, and each member's part.
type MemberDaemonSetStatus struct {
	// Desired, Current, Ready, Available and Updated sum the members'
	// desiredNumberScheduled, currentNumberScheduled, numberReady,
	// numberAvailable and updatedNumberScheduled.
	Desired   int32 `json:"desired"`
	Current   int32 `json:"current"`
	Ready     int32 `json:"ready"`
	Available int32 `json:"available"`
	Updated   int32 `json:"updated"`
	// Clusters are the members' parts by cluster name ("ready/desired");
	// a member not yet running one shows "absent".
	Clusters map[string]string `json:"clusters"`
}

// SumDaemonSets sums the member DaemonSets of one host DaemonSet (by
// cluster; nil: that member has none yet).
func SumDaemonSets(members map[string]*appsv1.DaemonSet) MemberDaemonSetStatus {
	s := MemberDaemonSetStatus{Clusters: map[string]string{}}
	for name, ds := range members {
		if ds == nil {
			s.Clusters[name] = "absent"
			continue
		}
		st := ds.Status
		s.Desired += st.DesiredNumberScheduled
		s.Current += st.CurrentNumberScheduled
		s.Ready += st.NumberReady
		s.Available += st.NumberAvailable
		s.Updated += st.UpdatedNumberScheduled
		s.Clusters[name] = fmt.Sprintf("%d/%d", st.NumberReady, st.DesiredNumberScheduled)
	}
	return s
}

// HostDaemonSetStatus returns host DaemonSet ds with sum written in its
// status condition and annotation, and which of the two changed (status,
// meta); the numbers of its status stay the host controller's.
func HostDaemonSetStatus(ds *appsv1.DaemonSet, sum MemberDaemonSetStatus, now metav1.Time) (up *appsv1.DaemonSet, status, meta bool) {
	up = ds.DeepCopy()
	raw, _ := json.Marshal(sum) // plain data: cannot fail
	if up.Annotations[AnnotationMemberDaemonSetStatus] != string(raw) {
		if up.Annotations == nil {
			up.Annotations = map[string]string{}
		}
		up.Annotations[AnnotationMemberDaemonSetStatus] = string(raw)
		meta = true
	}
	cond := appsv1.DaemonSetCondition{Type: ConditionMemberDaemonSets, Status: corev1.ConditionTrue, Reason: "MembersReady", LastTransitionTime: now}
	absent := slices.Contains(slices.Collect(maps.Values(sum.Clusters)), "absent")
	if absent || sum.Ready < sum.Desired || sum.Updated < sum.Desired {
		cond.Status, cond.Reason = corev1.ConditionFalse, "MembersProgressing"
	}
	names := slices.Sorted(maps.Keys(sum.Clusters))
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, n+" "+sum.Clusters[n])
	}
	cond.Message = fmt.Sprintf("%d of %d member pods ready, %d available, %d updated (ready/desired by cluster: %s)",
		sum.Ready, sum.Desired, sum.Available, sum.Updated, strings.Join(parts, ", "))
	i := slices.IndexFunc(up.Status.Conditions, func(c appsv1.DaemonSetCondition) bool { return c.Type == ConditionMemberDaemonSets })
	switch {
	case i < 0:
		up.Status.Conditions = append(up.Status.Conditions, cond)
		status = true
	case up.Status.Conditions[i].Status != cond.Status || up.Status.Conditions[i].Reason != cond.Reason || up.Status.Conditions[i].Message != cond.Message:
		if up.Status.Conditions[i].Status == cond.Status {
			cond.LastTransitionTime = up.Status.Conditions[i].LastTransitionTime
		}
		up.Status.Conditions[i] = cond
		status = true
	}
	return up, status, meta
}
