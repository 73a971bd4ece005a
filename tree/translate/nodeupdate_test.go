package translate

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func wantNode() *corev1.Node {
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kosmos-a", Labels: map[string]string{LabelCluster: "a", "tier": "gold"}, Annotations: map[string]string{}},
		Spec:   corev1.NodeSpec{Taints: []corev1.Taint{{Key: TaintLeaf, Value: "true", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{Capacity: res, Allocatable: res.DeepCopy()}}
	NodeInfo(n, "10.0.0.5", 10250)
	return n
}

// TestNodeUpdate: the tree's labels and taints are written, stale labels
// it set go, labels and host taints of others stay; an unchanged node is
// not written.
func TestNodeUpdate(t *testing.T) {
	want := wantNode()
	have := want.DeepCopy()
	have.Annotations[AnnotationOwnLabels] = "kosmos.io/cluster,kosmos.io/managed-by,region,tier"
	have.Labels["region"] = "eu" // the tree's once, no longer wanted
	have.Labels["team"] = "ops"  // someone else's
	have.Spec.Taints = append(have.Spec.Taints, corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute})
	before := have.DeepCopy()
	up, changed := NodeUpdate(want, have)
	if !changed || up.Labels["region"] != "" || up.Labels["team"] != "ops" || up.Labels["tier"] != "gold" {
		t.Fatalf("labels: changed=%v %v", changed, up.Labels)
	}
	if len(up.Spec.Taints) != 2 || up.Spec.Taints[1].Key != corev1.TaintNodeUnreachable {
		t.Errorf("taints: %v", up.Spec.Taints)
	}
	if have.Labels["region"] != "eu" || len(want.Annotations) != 0 || len(before.Spec.Taints) != len(have.Spec.Taints) {
		t.Error("NodeUpdate modified its input")
	}
	if _, again := NodeUpdate(want, up); again {
		t.Error("an up-to-date node would be written again")
	}
	changedTaint := want.DeepCopy()
	changedTaint.Spec.Taints[0].Value = "false"
	if _, ch := NodeUpdate(changedTaint, up); !ch {
		t.Error("a changed taint value is not written")
	}
}

// TestNodeStatusUpdate: status fields and the Ready condition are written
// when they differ; the transition time stays while the status does.
func TestNodeStatusUpdate(t *testing.T) {
	want := wantNode()
	t0, t1 := metav1.NewTime(time.Unix(1000, 0)), metav1.NewTime(time.Unix(2000, 0))
	ready := &corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "MemberReady", LastHeartbeatTime: t0, LastTransitionTime: t0}
	have := &corev1.Node{ObjectMeta: want.ObjectMeta}
	up, changed := NodeStatusUpdate(want, have, ready)
	if !changed || up.Status.Allocatable.Cpu().String() != "4" || len(up.Status.Conditions) != 1 || up.Status.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
		t.Fatalf("status: changed=%v %+v", changed, up.Status)
	}
	if len(have.Status.Conditions) != 0 {
		t.Error("NodeStatusUpdate modified its input")
	}
	if _, again := NodeStatusUpdate(want, up, ready); again {
		t.Error("an up-to-date status would be written again")
	}
	if _, again := NodeStatusUpdate(want, up, nil); again {
		t.Error("no condition given: nothing to write")
	}
	later := *ready
	later.LastHeartbeatTime, later.LastTransitionTime = t1, t1
	later.Reason = "Other"
	up2, changed := NodeStatusUpdate(want, up, &later)
	if !changed || !up2.Status.Conditions[0].LastTransitionTime.Equal(&t0) || !up2.Status.Conditions[0].LastHeartbeatTime.Equal(&t1) {
		t.Errorf("reason change: changed=%v %+v", changed, up2.Status.Conditions)
	}
	gone, changed := Unreachable(up2, t1)
	if !changed || gone.Status.Conditions[0].Status != corev1.ConditionUnknown || up2.Status.Conditions[0].Status != corev1.ConditionTrue {
		t.Errorf("Unreachable: changed=%v %+v", changed, gone.Status.Conditions)
	}
	if _, again := Unreachable(gone, t1); again {
		t.Error("an Unknown node would be marked again")
	}
}

func TestReadyCondition(t *testing.T) {
	now := metav1.Now()
	down := errors.New("connection refused")
	for _, tc := range []struct {
		name   string
		probe  error
		silent time.Duration
		usable int
		want   corev1.ConditionStatus // "" for nil
	}{
		{"answers with room", nil, 0, 2, corev1.ConditionTrue},
		{"answers without a usable node", nil, 0, 0, corev1.ConditionFalse},
		{"silent within the grace period", down, 10 * time.Second, 2, ""},
		{"silent past the grace period", down, time.Minute, 2, corev1.ConditionUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ReadyCondition("a", tc.probe, tc.silent, 40*time.Second, tc.usable, now)
			switch {
			case got == nil && tc.want == "":
			case got == nil || got.Status != tc.want:
				t.Errorf("ReadyCondition = %+v, want %q", got, tc.want)
			}
		})
	}
	notReady := &corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "MemberNodeNotReady"}}}}
	cond := ReadyCondition("a", nil, 0, 40*time.Second, 1, now)
	if got := NodeReadyCondition(notReady, cond); got.Reason != "MemberNodeNotReady" || !got.LastHeartbeatTime.Equal(&now) {
		t.Errorf("a OneToOne node whose member node is not Ready: %+v", got)
	}
	if got := NodeReadyCondition(notReady, nil); got != nil {
		t.Errorf("within the grace period the node keeps what it shows: %+v", got)
	}
}

func TestSplitEndpoint(t *testing.T) {
	for in, want := range map[string][2]string{
		"":                        {"", ""},
		"https://10.0.0.10:6443":  {"10.0.0.10", "6443"},
		"api.example.com":         {"api.example.com", "443"},
		"10.0.0.10:8443":          {"10.0.0.10", "8443"},
		"https://[fd00::1]:6443/": {"fd00::1", "6443"},
		"https://":                {"", ""},
	} {
		if h, p := SplitEndpoint(in); h != want[0] || p != want[1] {
			t.Errorf("SplitEndpoint(%q) = %q %q, want %q", in, h, p, want)
		}
	}
}
