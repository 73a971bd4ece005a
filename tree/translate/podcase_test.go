package translate

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestClassifyPod walks every case of the pod sync's decision: which host
// and member pods, in which states, lead to which handler.
func TestClassifyPod(t *testing.T) {
	now := metav1.Now()
	host := func(mods ...func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-0", UID: "host-1"}, Spec: corev1.PodSpec{NodeName: "kosmos-a"}}
		for _, m := range mods {
			m(p)
		}
		return p
	}
	member := func(mods ...func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-0", UID: "member-1",
			Labels:      map[string]string{LabelManagedBy: ManagedBy, LabelOwner: "owner-a"},
			Annotations: map[string]string{AnnotationHostPodUID: "host-1"}}}
		for _, m := range mods {
			m(p)
		}
		return p
	}
	deleting := func(p *corev1.Pod) { p.DeletionTimestamp = &now }
	started := func(p *corev1.Pod) { p.Status.StartTime = &now; p.Status.Phase = corev1.PodRunning }
	succeeded := func(p *corev1.Pod) { p.Status.StartTime = &now; p.Status.Phase = corev1.PodSucceeded }
	foreign := func(p *corev1.Pod) { p.Labels = map[string]string{"app": "theirs"} }
	otherOwner := func(p *corev1.Pod) { p.Labels[LabelOwner] = "owner-b" }
	stale := func(p *corev1.Pod) { p.Annotations[AnnotationHostPodUID] = "host-0" }
	daemon := func(p *corev1.Pod) {
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", UID: "ds", Controller: &yes}}
	}
	for _, tc := range []struct {
		name        string
		host        *corev1.Pod
		hostCluster string
		member      *corev1.Pod
		want        PodCase
	}{
		{"nothing anywhere", nil, "", nil, PodNothing},
		{"new host pod", host(), "a", nil, PodCreate},
		{"new DaemonSet pod", host(daemon), "a", nil, PodDaemonSet},
		{"both run", host(started), "a", member(started), PodUpdate},
		{"copy stopping", host(started), "a", member(started, deleting), PodStatusUp},
		{"host pod deleted", host(started, deleting), "a", member(started), PodDeleteMember},
		{"host pod deleted, copy stopping", host(started, deleting), "a", member(started, deleting), PodStatusUp},
		{"host pod deleted, copy gone", host(started, deleting), "a", nil, PodReleaseHost},
		{"copy vanished after it ran", host(started), "a", nil, PodFailGone},
		{"finished, copy gone", host(succeeded), "a", nil, PodNothing},
		{"orphan", nil, "", member(started), PodDeleteOrphan},
		{"orphan stopping", nil, "", member(started, deleting), PodNothing},
		{"host pod bound to another member", host(), "b", member(started), PodDeleteOrphan},
		{"host pod bound to another member, no copy", host(), "b", nil, PodNothing},
		{"virtual node not in the cache", host(), "", member(started), PodWait},
		{"virtual node not in the cache, no copy", host(), "", nil, PodNothing},
		{"name taken by the member's own pod", host(), "a", member(foreign), PodNameTaken},
		{"name taken by another sync's copy", host(), "a", member(otherOwner), PodNameTaken},
		{"member's own pod, no host pod", nil, "", member(foreign), PodNothing},
		{"terminating host pod, member's own pod", host(deleting), "a", member(foreign), PodNameTaken},
		{"copy of an earlier host pod", host(), "a", member(stale, started), PodDeleteStale},
		{"copy of an earlier host pod stopping", host(), "a", member(stale, deleting), PodWait},
		{"terminating host pod, stale copy", host(deleting), "a", member(stale), PodDeleteStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ClassifyPod(PodPair{Host: tc.host, HostCluster: tc.hostCluster, Member: tc.member, Cluster: "a", Owner: "owner-a"})
			if got != tc.want {
				t.Errorf("ClassifyPod = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPodCaseString(t *testing.T) {
	for c := PodNothing; c <= PodUpdate; c++ {
		if s := c.String(); s == "" || s == "PodCase(?)" {
			t.Errorf("case %d has no name", int(c))
		}
	}
	if PodCase(99).String() != "PodCase(?)" {
		t.Error("an unknown case is named")
	}
}
