package translate

import (
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func hostDaemonSet() *appsv1.DaemonSet {
	sel := map[string]string{"app": "agent"}
	ms, _ := json.Marshal(MemberScheduling{NodeSelector: map[string]string{"kubernetes.io/os": "linux"}})
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "agent", UID: "ds-uid", Annotations: map[string]string{AnnotationMemberDaemonSet: "true"}},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel, Annotations: map[string]string{AnnotationMemberScheduling: string(ms), "note": "x"}},
				Spec: corev1.PodSpec{ServiceAccountName: "agent", NodeSelector: map[string]string{"host-only": "true"},
					Tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}, {Operator: corev1.TolerationOpExists}},
					Containers:  []corev1.Container{{Name: "agent", Image: "ops/agent:1"}}},
			},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType},
		},
	}
}

// TestMemberDaemonSet: the member's DaemonSet is marked as the tree's, its
// pods are not (they are the member's own pods, never taken for copies),
// and its template is translated as a pod is.
func TestMemberDaemonSet(t *testing.T) {
	ds := hostDaemonSet()
	o := PodOptions{Owner: "own", MemberTolerations: []string{"dedicated"}, HostAPIHost: "10.0.0.1", HostAPIPort: "6443",
		GroupSelector: map[string]string{"g": "1"}}
	got, err := MemberDaemonSet(ds, o)
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels[LabelManagedBy] != ManagedBy || got.Labels[LabelOwner] != "own" || got.Annotations[AnnotationHostDaemonSetUID] != "ds-uid" || got.Annotations[AnnotationHostSpec] == "" {
		t.Errorf("marks %v %v", got.Labels, got.Annotations)
	}
	tl := got.Spec.Template.Labels
	if tl[LabelManagedBy] != "" || tl[LabelOwner] != "" || tl[LabelOrigin] != "" || tl["app"] != "agent" {
		t.Errorf("template labels %v: its pods must be the member's own", tl)
	}
	if _, ok := got.Spec.Template.Annotations[AnnotationMemberScheduling]; ok || got.Spec.Template.Annotations["note"] != "x" {
		t.Errorf("template annotations %v", got.Spec.Template.Annotations)
	}
	spec := got.Spec.Template.Spec
	if spec.ServiceAccountName != MemberAccountName("agent") || spec.NodeSelector["kubernetes.io/os"] != "linux" || spec.NodeSelector["host-only"] != "" || spec.NodeSelector["g"] != "" {
		t.Errorf("template spec: account %q, node selector %v", spec.ServiceAccountName, spec.NodeSelector)
	}
	if len(spec.Tolerations) != 1 || spec.Tolerations[0].Key != "dedicated" {
		t.Errorf("tolerations %v: only the allowed key stays", spec.Tolerations)
	}
	for _, c := range spec.Containers {
		for _, e := range c.Env {
			if e.Name == "KUBERNETES_SERVICE_HOST" {
				t.Errorf("a member DaemonSet's pods are pointed at the host's API server (%s) with no token", e.Value)
			}
		}
	}
	if got.Spec.Selector.MatchLabels["app"] != "agent" || got.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType {
		t.Errorf("selector %v, strategy %v", got.Spec.Selector, got.Spec.UpdateStrategy)
	}

	// Unchanged: no update; the image changes: an update that keeps what the member set.
	have := got.DeepCopy()
	have.Annotations["deprecated.daemonset.template.generation"] = "1"
	if _, changed := MemberDaemonSetUpdate(got, have); changed {
		t.Error("unchanged DaemonSet updated")
	}
	ds.Spec.Template.Spec.Containers[0].Image = "ops/agent:2"
	want, err := MemberDaemonSet(ds, o)
	if err != nil {
		t.Fatal(err)
	}
	up, changed := MemberDaemonSetUpdate(want, have)
	if !changed || up.Spec.Template.Spec.Containers[0].Image != "ops/agent:2" || up.Annotations["deprecated.daemonset.template.generation"] != "1" {
		t.Errorf("update: changed %v, image %s, annotations %v", changed, up.Spec.Template.Spec.Containers[0].Image, up.Annotations)
	}

	for name, mutate := range map[string]func(*appsv1.DaemonSet){
		"API token volume": func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access-x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}}}
		},
		"control-plane selector": func(ds *appsv1.DaemonSet) {
			ms, _ := json.Marshal(MemberScheduling{NodeSelector: map[string]string{"node-role.kubernetes.io/control-plane": ""}})
			ds.Spec.Template.Annotations[AnnotationMemberScheduling] = string(ms)
		},
	} {
		bad := hostDaemonSet()
		mutate(bad)
		if _, err := MemberDaemonSet(bad, o); err == nil || !strings.Contains(err.Error(), "ops/agent") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSumDaemonSets: the members' counts add up; the condition is True
// only when every member runs it, all ready and updated.
func TestSumDaemonSets(t *testing.T) {
	st := func(desired, ready, updated int32) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: desired, CurrentNumberScheduled: desired,
			NumberReady: ready, NumberAvailable: ready, UpdatedNumberScheduled: updated}}
	}
	now := metav1.Now()
	for _, tc := range []struct {
		name    string
		parts   map[string]*appsv1.DaemonSet
		desired int32
		ready   int32
		cond    corev1.ConditionStatus
		msg     string
	}{
		{"all ready", map[string]*appsv1.DaemonSet{"a": st(2, 2, 2), "b": st(1, 1, 1)}, 3, 3, corev1.ConditionTrue, "3 of 3 member pods ready, 3 available, 3 updated (ready/desired by cluster: a 2/2, b 1/1)"},
		{"one not ready", map[string]*appsv1.DaemonSet{"a": st(2, 1, 2), "b": st(1, 1, 1)}, 3, 2, corev1.ConditionFalse, "2 of 3"},
		{"rolling", map[string]*appsv1.DaemonSet{"a": st(2, 2, 1)}, 2, 2, corev1.ConditionFalse, "1 updated"},
		{"one member without it", map[string]*appsv1.DaemonSet{"a": st(2, 2, 2), "b": nil}, 2, 2, corev1.ConditionFalse, "b absent"},
		{"no members", map[string]*appsv1.DaemonSet{}, 0, 0, corev1.ConditionTrue, "0 of 0"},
	} {
		sum := SumDaemonSets(tc.parts)
		if sum.Desired != tc.desired || sum.Ready != tc.ready {
			t.Errorf("%s: sum %+v", tc.name, sum)
		}
		host := hostDaemonSet()
		host.Status.NumberReady = 7 // the host controller's own count
		up, status, meta := HostDaemonSetStatus(host, sum, now)
		if !status || !meta || up.Status.NumberReady != 7 {
			t.Errorf("%s: status %v meta %v, host count %d", tc.name, status, meta, up.Status.NumberReady)
		}
		c := up.Status.Conditions[0]
		if c.Type != ConditionMemberDaemonSets || c.Status != tc.cond || !strings.Contains(c.Message, tc.msg) {
			t.Errorf("%s: condition %+v", tc.name, c)
		}
		var back MemberDaemonSetStatus
		if err := json.Unmarshal([]byte(up.Annotations[AnnotationMemberDaemonSetStatus]), &back); err != nil || back.Desired != tc.desired {
			t.Errorf("%s: annotation %q: %v", tc.name, up.Annotations[AnnotationMemberDaemonSetStatus], err)
		}
		if _, status, meta := HostDaemonSetStatus(up, sum, now); status || meta {
			t.Errorf("%s: written twice", tc.name)
		}
	}
}

// TestDaemonSetPodMessage: the event says how to opt in, or that the
// DaemonSet already runs in the member.
func TestDaemonSetPodMessage(t *testing.T) {
	yes := true
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "agent-x", OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", Controller: &yes}}},
		Spec: corev1.PodSpec{NodeName: "kosmos-a"}}
	if DaemonSetOf(p) != "agent" {
		t.Fatalf("DaemonSetOf %q", DaemonSetOf(p))
	}
	if msg := DaemonSetPodMessage(p, nil, "a"); !strings.Contains(msg, AnnotationMemberDaemonSet+`: "true"`) {
		t.Errorf("without opt-in: %s", msg)
	}
	if msg := DaemonSetPodMessage(p, hostDaemonSet(), "a"); !strings.Contains(msg, "runs as a DaemonSet of member cluster a") {
		t.Errorf("with opt-in: %s", msg)
	}
}
