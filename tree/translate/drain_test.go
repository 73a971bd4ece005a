package translate

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestCordon: the tree cordons a leaving cluster's node once, lifts only
// its own cordon when the cluster is back, and never an admin's.
func TestCordon(t *testing.T) {
	want := wantNode()
	have, _ := NodeUpdate(want, want.DeepCopy())
	cordoned, changed := Cordon(have)
	if !changed || !cordoned.Spec.Unschedulable || cordoned.Annotations[AnnotationCordoned] == "" || have.Spec.Unschedulable {
		t.Fatalf("cordon: changed=%v node=%+v (input modified: %v)", changed, cordoned.Spec, have.Spec.Unschedulable)
	}
	if _, again := Cordon(cordoned); again {
		t.Error("a cordoned node is cordoned again")
	}
	back, changed := NodeUpdate(want, cordoned)
	if !changed || back.Spec.Unschedulable || back.Annotations[AnnotationCordoned] != "" {
		t.Errorf("the tree's cordon is not lifted when the cluster is back: changed=%v %+v %v", changed, back.Spec, back.Annotations)
	}
	admin := have.DeepCopy()
	admin.Spec.Unschedulable = true // kubectl cordon
	if up, ch := NodeUpdate(want, admin); ch && !up.Spec.Unschedulable {
		t.Error("an admin's cordon was lifted")
	}
	if _, ch := Cordon(admin); ch {
		t.Error("an admin-cordoned node is marked as the tree's")
	}
}

// TestDrainNode: every pod but DaemonSet pods keeps the node; only live
// ones are evicted (terminating ones wait for the pod sync).
func TestDrainNode(t *testing.T) {
	now := metav1.Now()
	yes := true
	pod := func(name string, mod func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}}
		if mod != nil {
			mod(p)
		}
		return p
	}
	ds := metav1.OwnerReference{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "DaemonSet", Name: "agent", UID: "u", Controller: &yes}
	rs := metav1.OwnerReference{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "ReplicaSet", Name: "web", UID: "r", Controller: &yes}
	for _, tc := range []struct {
		name      string
		pods      []*corev1.Pod
		evict     []string
		remaining int
	}{
		{name: "empty node", pods: nil, remaining: 0},
		{name: "live pods evicted", pods: []*corev1.Pod{
			pod("web-1", func(p *corev1.Pod) { p.OwnerReferences = []metav1.OwnerReference{rs} }),
			pod("bare", nil),
		}, evict: []string{"web-1", "bare"}, remaining: 2},
		{name: "terminating pods wait, not evicted again", pods: []*corev1.Pod{
			pod("web-1", func(p *corev1.Pod) { p.DeletionTimestamp = &now }),
		}, remaining: 1},
		{name: "finished pods evicted too", pods: []*corev1.Pod{
			pod("job-1", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		}, evict: []string{"job-1"}, remaining: 1},
		{name: "DaemonSet pods neither keep nor are evicted", pods: []*corev1.Pod{
			pod("agent-x", func(p *corev1.Pod) { p.OwnerReferences = []metav1.OwnerReference{ds} }),
		}, remaining: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := DrainNode(tc.pods)
			var got []string
			for _, p := range d.Evict {
				got = append(got, p.Name)
			}
			if len(got) != len(tc.evict) || d.Remaining != tc.remaining {
				t.Fatalf("evict %v remaining %d, want %v %d", got, d.Remaining, tc.evict, tc.remaining)
			}
			for i := range got {
				if got[i] != tc.evict[i] {
					t.Errorf("evict %v, want %v", got, tc.evict)
				}
			}
		})
	}
}
