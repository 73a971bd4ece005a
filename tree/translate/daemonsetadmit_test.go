package translate

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestMemberDaemonSetNamespace: only a namespace the admin labelled runs
// DaemonSets in members; the refusal says how to enable it.
func TestMemberDaemonSetNamespace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels map[string]string
		ok     bool
	}{
		{"labelled", map[string]string{LabelMemberDaemonSets: MemberDaemonSetsEnabled}, true},
		{"unlabelled", nil, false},
		{"other value", map[string]string{LabelMemberDaemonSets: "true"}, false},
		{"tokens only", map[string]string{"kosmos.io/tree-tokens": "enabled"}, false},
	} {
		err := MemberDaemonSetNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ops", Labels: tc.labels}})
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "kubectl label namespace ops "+LabelMemberDaemonSets+"=enabled") {
			t.Errorf("%s: %v does not say how to enable", tc.name, err)
		}
	}
	if MemberDaemonSetNamespace(nil) == nil {
		t.Error("unknown namespace admitted")
	}
}

// TestDaemonSetDryRunPod: the pod the host's admission judges is the
// template's, in the DaemonSet's namespace, with a generated name.
func TestDaemonSetDryRunPod(t *testing.T) {
	ds := hostDaemonSet()
	priv := true
	ds.Spec.Template.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &priv}
	p := DaemonSetDryRunPod(ds)
	if p.Namespace != "ops" || p.Name != "" || p.GenerateName != "agent-" || p.UID != "" {
		t.Errorf("meta %+v", p.ObjectMeta)
	}
	if p.Labels["app"] != "agent" || !reflect.DeepEqual(p.Spec.Containers, ds.Spec.Template.Spec.Containers) {
		t.Errorf("pod %+v does not carry the template", p)
	}
	p.Labels["x"] = "y"
	if ds.Spec.Template.Labels["x"] != "" {
		t.Error("the dry-run pod shares the template's labels")
	}
}

// TestPodSecurityLabels: the member namespace follows the host's Pod
// Security labels, added, changed and removed; other labels stay.
func TestPodSecurityLabels(t *testing.T) {
	enforce, warn := PodSecurityLabelPrefix+"enforce", PodSecurityLabelPrefix+"warn"
	for _, tc := range []struct {
		name         string
		host, member map[string]string
		want         map[string]string
		changed      bool
	}{
		{"added", map[string]string{enforce: "baseline", "team": "a"}, map[string]string{LabelManagedBy: ManagedBy},
			map[string]string{LabelManagedBy: ManagedBy, enforce: "baseline"}, true},
		{"changed and removed", map[string]string{enforce: "restricted"}, map[string]string{enforce: "baseline", warn: "restricted", "x": "1"},
			map[string]string{enforce: "restricted", "x": "1"}, true},
		{"same", map[string]string{enforce: "baseline"}, map[string]string{enforce: "baseline"},
			map[string]string{enforce: "baseline"}, false},
		{"none", nil, nil, map[string]string{}, false},
	} {
		got, changed := PodSecurityLabels(tc.host, tc.member)
		if changed != tc.changed || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v %v, want %v %v", tc.name, got, changed, tc.want, tc.changed)
		}
	}
}

// TestMemberDaemonSetTreeLabels: a template that carries the tree's own
// ownership labels is refused (its pods would pass for copies).
func TestMemberDaemonSetTreeLabels(t *testing.T) {
	for _, l := range []map[string]string{{LabelOwner: "x"}, {LabelOrigin: OriginHost}, {LabelManagedBy: ManagedBy}} {
		ds := hostDaemonSet()
		for k, v := range l {
			ds.Spec.Template.Labels[k] = v
		}
		if _, err := MemberDaemonSet(ds, PodOptions{Owner: "own"}); err == nil || !strings.Contains(err.Error(), "tree's label") {
			t.Errorf("labels %v: %v", l, err)
		}
	}
	ds := hostDaemonSet()
	ds.Spec.Template.Labels[LabelManagedBy] = "Helm"
	if _, err := MemberDaemonSet(ds, PodOptions{Owner: "own"}); err != nil {
		t.Errorf("managed-by Helm: %v", err)
	}
}

// TestMemberDaemonSetRecreate: a changed selector (immutable) means a new
// member DaemonSet; anything else is an update.
func TestMemberDaemonSetRecreate(t *testing.T) {
	want, err := MemberDaemonSet(hostDaemonSet(), PodOptions{Owner: "own"})
	if err != nil {
		t.Fatal(err)
	}
	have := want.DeepCopy()
	have.Spec.Template.Spec.Containers[0].Image = "ops/agent:0"
	if MemberDaemonSetRecreate(want, have) {
		t.Error("an image change recreates")
	}
	have.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "old"}}
	if !MemberDaemonSetRecreate(want, have) {
		t.Error("a selector change does not recreate")
	}
}
