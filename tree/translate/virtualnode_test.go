package translate

import (
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/internal/testinfra/golden"
	"kosmos.io/kosmos/schema/v1alpha1"
)

func memberNode(name string, cpu, mem string, ready, unschedulable bool, lbl map[string]string) corev1.Node {
	st := corev1.ConditionTrue
	if !ready {
		st = corev1.ConditionFalse
	}
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem), corev1.ResourcePods: resource.MustParse("110")}
	return corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbl},
		Spec:       corev1.NodeSpec{Unschedulable: unschedulable},
		Status:     corev1.NodeStatus{Allocatable: res, Capacity: res, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}},
	}
}

func memberPod(name, node, cpu, mem string, phase corev1.PodPhase, fromKosmos bool) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}}}}},
		Status: corev1.PodStatus{Phase: phase},
	}
	if fromKosmos {
		p.Labels[LabelOrigin] = "host"
	}
	return p
}

// TestVirtualNodes renders both modes for one member: a NotReady node, a
// cordoned node and a node outside the selector are left out; pods Kosmos
// did not create (and that still run) use up room; Kosmos' own do not.
func TestVirtualNodes(t *testing.T) {
	pool := map[string]string{"pool": "burst", corev1.LabelTopologyZone: "us-east-1a"}
	m := Member{
		Nodes: []corev1.Node{
			memberNode("n1", "8", "32Gi", true, false, pool),
			memberNode("n2", "4", "16Gi", true, false, pool),
			memberNode("n3", "16", "64Gi", false, false, pool),
			memberNode("n4", "16", "64Gi", true, true, pool),
			memberNode("n5", "16", "64Gi", true, false, map[string]string{"pool": "system"}),
		},
		Pods: []corev1.Pod{
			memberPod("app", "n1", "2", "4Gi", corev1.PodRunning, false),
			memberPod("done", "n1", "4", "4Gi", corev1.PodSucceeded, false),
			memberPod("mirrored", "n2", "3", "8Gi", corev1.PodRunning, true),
			memberPod("pending", "", "1", "1Gi", corev1.PodPending, false),
		},
	}
	for _, mode := range []v1alpha1.TreeMode{v1alpha1.TreeAggregate, v1alpha1.TreeOneToOne} {
		t.Run(string(mode), func(t *testing.T) {
			c := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-b"}, Spec: v1alpha1.ClusterObjectSpec{
				Region: "us-east", Zone: "us-east-1a", Labels: map[string]string{"tier": "burst"},
				Tree: v1alpha1.TreeSpec{Mode: mode, NodeSelector: map[string]string{"pool": "burst"}, NodeLabels: map[string]string{"kosmos.io/pool": "burst"},
					NodeTaints: []v1alpha1.Taint{{Key: "dedicated", Value: "batch", Effect: "NoSchedule"}}},
			}}
			got, err := yaml.Marshal(VirtualNodes(c, m))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "virtualnodes-"+string(mode)+".golden.yaml"), got)
		})
	}
}

// checkGolden compares got with the golden file (rewritten with -update).
func checkGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	golden.Assert(t, file, got)
}

// TestVirtualNodeNamesUnambiguous: no two (cluster, node) pairs, nor an
// Aggregate and a OneToOne node, share a virtual node name; cluster names
// with a dot are refused.
func TestVirtualNodeNamesUnambiguous(t *testing.T) {
	for _, pair := range [][2][2]string{
		{{"a", "b-c"}, {"a-b", "c"}},                    // the dash that used to join them
		{{"member-a", "alias"}, {"member-a-alias", ""}}, // OneToOne against Aggregate
		{{"a", "b.c"}, {"a", "b-c"}},
	} {
		x, y := VirtualNodeName(pair[0][0], pair[0][1]), VirtualNodeName(pair[1][0], pair[1][1])
		if x == y {
			t.Errorf("%v and %v are both %q", pair[0], pair[1], x)
		}
	}
	if got := VirtualNodeName("a", "b-c"); got != "kosmos-a.b-c" {
		t.Errorf("OneToOne name %q", got)
	}
	if CheckClusterName("member-a") != nil || CheckClusterName("a.b") == nil || CheckClusterName("A") == nil {
		t.Error("CheckClusterName")
	}
}

// TestVirtualNodeEveryResource: the virtual node sums every allocatable
// resource of the member (a GPU node's nvidia.com/gpu, ephemeral-storage,
// hugepages), less what the member's own pods request; the summary keeps
// each node's; os and architecture come from the member nodes (none when
// they differ).
func TestVirtualNodeEveryResource(t *testing.T) {
	arch := func(a string) map[string]string { return map[string]string{corev1.LabelArchStable: a} }
	gpu := memberNode("gpu", "8", "32Gi", true, false, arch("amd64"))
	for _, l := range []*corev1.ResourceList{&gpu.Status.Allocatable, &gpu.Status.Capacity} {
		(*l)["nvidia.com/gpu"] = resource.MustParse("2")
		(*l)[corev1.ResourceEphemeralStorage] = resource.MustParse("100Gi")
		(*l)["hugepages-2Mi"] = resource.MustParse("1Gi")
	}
	plain := memberNode("plain", "16", "64Gi", true, false, arch("amd64"))
	user := memberPod("trainer", "gpu", "1", "1Gi", corev1.PodRunning, false)
	user.Spec.Containers[0].Resources.Requests["nvidia.com/gpu"] = resource.MustParse("1")
	c := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "a"}}
	n := VirtualNodes(c, Member{Nodes: []corev1.Node{gpu, plain}, Pods: []corev1.Pod{user}})[0]
	al := n.Status.Allocatable
	if q := al["nvidia.com/gpu"]; q.Value() != 1 {
		t.Errorf("nvidia.com/gpu = %s, want 1 (2 less the member's own pod's)", q.String())
	}
	if q := al[corev1.ResourceEphemeralStorage]; q.Cmp(resource.MustParse("100Gi")) != 0 {
		t.Errorf("ephemeral-storage = %s", q.String())
	}
	if q := al["hugepages-2Mi"]; q.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("hugepages-2Mi = %s", q.String())
	}
	if n.Labels[corev1.LabelArchStable] != "amd64" || n.Labels[corev1.LabelOSStable] != "linux" {
		t.Errorf("platform labels %v", n.Labels)
	}
	var sum v1alpha1.FreeResources
	if err := yaml.Unmarshal([]byte(n.Annotations[v1alpha1.AnnotationFreeResources]), &sum); err != nil {
		t.Fatal(err)
	}
	if !sum.Fits(1000, 1<<30, map[string]int64{"nvidia.com/gpu": 1}) || sum.Fits(1000, 1<<30, map[string]int64{"nvidia.com/gpu": 2}) {
		t.Errorf("summary %+v: one free GPU should fit, two not", sum)
	}
	mixed := memberNode("arm", "4", "8Gi", true, false, arch("arm64"))
	n = VirtualNodes(c, Member{Nodes: []corev1.Node{gpu, mixed}})[0]
	if _, ok := n.Labels[corev1.LabelArchStable]; ok {
		t.Errorf("a mixed cluster's node claims an architecture: %v", n.Labels)
	}
	c.Spec.Tree.Mode = v1alpha1.TreeOneToOne
	for _, vn := range VirtualNodes(c, Member{Nodes: []corev1.Node{gpu, mixed}}) {
		if vn.Labels[corev1.LabelArchStable] != map[string]string{"gpu": "amd64", "arm": "arm64"}[vn.Labels[LabelMemberNode]] {
			t.Errorf("OneToOne node %s: arch %q", vn.Name, vn.Labels[corev1.LabelArchStable])
		}
	}
}
