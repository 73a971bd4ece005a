package translate

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/schema/v1alpha1"
)

func groupCluster() *v1alpha1.Cluster {
	return &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-g"}, Spec: v1alpha1.ClusterObjectSpec{
		Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate,
			NodeLabels: map[string]string{"kosmos.io/pool": "general"},
			NodeTaints: []v1alpha1.Taint{{Key: "dedicated", Value: "batch", Effect: "NoSchedule"}},
			NodeGroups: []v1alpha1.NodeGroup{
				{Name: "gpu", NodeSelector: map[string]string{"accelerator": "nvidia"}, Labels: map[string]string{"kosmos.io/pool": "gpu"},
					Taints: []v1alpha1.Taint{{Key: "nvidia.com/gpu", Effect: "NoSchedule"}}},
				{Name: "arm", NodeSelector: map[string]string{"pool": "arm", "tier": "edge"}},
			}},
	}}
}

// TestVirtualNodesWithGroups: in Aggregate mode each node group is a
// virtual node of its own over the member nodes it takes (the first
// group that matches), with its labels and taints and not the cluster's;
// the default node keeps the rest and the cluster's extras.
func TestVirtualNodesWithGroups(t *testing.T) {
	gpu := memberNode("gpu-1", "8", "32Gi", true, false, map[string]string{"accelerator": "nvidia", "pool": "arm", "tier": "edge"})
	for _, l := range []*corev1.ResourceList{&gpu.Status.Allocatable, &gpu.Status.Capacity} {
		(*l)["nvidia.com/gpu"] = resource.MustParse("4")
	}
	m := Member{Nodes: []corev1.Node{
		gpu,
		memberNode("cpu-1", "16", "64Gi", true, false, nil),
		memberNode("arm-1", "4", "8Gi", true, false, map[string]string{"pool": "arm", "tier": "edge"}),
		memberNode("arm-2", "4", "8Gi", true, false, map[string]string{"pool": "arm"}), // half the arm selector: default
	}}
	c := groupCluster()
	nodes := VirtualNodes(c, m)
	got, err := yaml.Marshal(nodes)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("testdata", "virtualnodes-groups.golden.yaml"), got)
	want := map[string]string{"kosmos-member-g": "20", "kosmos-member-g.arm.group": "4", "kosmos-member-g.gpu.group": "8"}
	if len(nodes) != len(want) {
		t.Fatalf("%d virtual nodes, want %d", len(nodes), len(want))
	}
	for _, n := range nodes {
		if cpu := n.Status.Allocatable.Cpu(); cpu.String() != want[n.Name] {
			t.Errorf("%s: cpu %s, want %s", n.Name, cpu.String(), want[n.Name])
		}
		_, hasGPU := n.Status.Allocatable["nvidia.com/gpu"]
		if hasGPU != (n.Name == "kosmos-member-g.gpu.group") {
			t.Errorf("%s: nvidia.com/gpu in allocatable: %v", n.Name, hasGPU)
		}
	}
	if UsableNodes(c, m) != 4 {
		t.Errorf("usable nodes %d, want 4", UsableNodes(c, m))
	}
}

// TestGroupPlacement: where a copy runs in the member, per virtual node.
func TestGroupPlacement(t *testing.T) {
	c := groupCluster()
	gpuSel, armSel := c.Spec.Tree.NodeGroups[0].NodeSelector, c.Spec.Tree.NodeGroups[1].NodeSelector
	for _, tc := range []struct {
		node      string
		sel       map[string]string
		avoid     []map[string]string
		oneToOne  bool
		noGroups  bool
		wantEmpty bool
	}{
		{node: "kosmos-member-g.gpu.group", sel: gpuSel},
		// A node in both groups is the first's (NodeGroupOf): the second
		// group's copies stay off it.
		{node: "kosmos-member-g.arm.group", sel: armSel, avoid: []map[string]string{gpuSel}},
		{node: "kosmos-member-g", avoid: []map[string]string{gpuSel, armSel}},
		{node: "kosmos-other", wantEmpty: true},
		{node: "kosmos-member-g", noGroups: true, wantEmpty: true},
		{node: "kosmos-member-g.gpu.group", oneToOne: true, wantEmpty: true},
	} {
		c := groupCluster()
		if tc.oneToOne {
			c.Spec.Tree.Mode = v1alpha1.TreeOneToOne
		}
		if tc.noGroups {
			c.Spec.Tree.NodeGroups = nil
		}
		sel, avoid := GroupPlacement(c, tc.node)
		if tc.wantEmpty {
			if sel != nil || avoid != nil {
				t.Errorf("%s: %v %v, want nothing", tc.node, sel, avoid)
			}
			continue
		}
		if !reflect.DeepEqual(sel, tc.sel) || !reflect.DeepEqual(avoid, tc.avoid) {
			t.Errorf("%s: selector %v avoid %v, want %v %v", tc.node, sel, avoid, tc.sel, tc.avoid)
		}
	}
}

// TestMemberPodInGroups: a group node's copy selects the group's member
// nodes (a conflicting annotation is refused); a default node's copy
// gets required terms that keep it off every group, crossed with its own.
func TestMemberPodInGroups(t *testing.T) {
	c := groupCluster()
	opts := func(node string) PodOptions {
		o := PodOptions{VirtualNode: node, MemberTolerations: webTolerations}
		o.GroupSelector, o.AvoidGroups = GroupPlacement(c, node)
		return o
	}
	hp := readPod(t, "web.yaml")
	mp, err := MemberPod(hp, opts("kosmos-member-g.gpu.group"))
	if err != nil {
		t.Fatal(err)
	}
	if mp.Spec.NodeSelector["accelerator"] != "nvidia" {
		t.Errorf("group copy's node selector %v", mp.Spec.NodeSelector)
	}

	conflict := hp.DeepCopy()
	raw, _ := json.Marshal(MemberScheduling{NodeSelector: map[string]string{"accelerator": "amd"}})
	conflict.Annotations = map[string]string{AnnotationMemberScheduling: string(raw)}
	if _, err := MemberPod(conflict, opts("kosmos-member-g.gpu.group")); err == nil || !strings.Contains(err.Error(), "conflicts with the node group") {
		t.Errorf("conflicting selector: %v", err)
	}

	mp, err = MemberPod(hp, opts("kosmos-member-g"))
	if err != nil {
		t.Fatal(err)
	}
	terms := requiredTerms(mp.Spec.Affinity)
	// not gpu (1 label) and not arm (2 labels): 1 × 2 terms.
	wantTerms := [][]string{{"accelerator NotIn nvidia", "pool NotIn arm"}, {"accelerator NotIn nvidia", "tier NotIn edge"}}
	if got := termStrings(terms); !reflect.DeepEqual(got, wantTerms) {
		t.Errorf("default copy's terms %v, want %v", got, wantTerms)
	}
	// Every node: in no group ⇔ some term matches.
	for _, l := range []struct {
		labels map[string]string
		free   bool
	}{
		{nil, true},
		{map[string]string{"accelerator": "nvidia"}, false},
		{map[string]string{"pool": "arm", "tier": "edge"}, false},
		{map[string]string{"pool": "arm"}, true},
		{map[string]string{"accelerator": "amd", "tier": "edge"}, true},
	} {
		if got := anyTermMatches(terms, l.labels); got != l.free || (NodeGroupOf(c, l.labels) == "") != l.free {
			t.Errorf("labels %v: terms match %v, want %v", l.labels, got, l.free)
		}
	}

	own := hp.DeepCopy()
	raw, _ = json.Marshal(MemberScheduling{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{
			{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}},
			{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}}},
		}}}}})
	own.Annotations = map[string]string{AnnotationMemberScheduling: string(raw)}
	mp, err = MemberPod(own, opts("kosmos-member-g"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(requiredTerms(mp.Spec.Affinity)); n != 4 {
		t.Errorf("own 2 terms × 2 ways: %d terms", n)
	}

	many := groupCluster()
	many.Spec.Tree.NodeGroups = nil
	for _, g := range []string{"a", "b", "c"} {
		many.Spec.Tree.NodeGroups = append(many.Spec.Tree.NodeGroups, v1alpha1.NodeGroup{Name: g,
			NodeSelector: map[string]string{g + "1": "x", g + "2": "x", g + "3": "x", g + "4": "x", g + "5": "x"}})
	}
	o := PodOptions{VirtualNode: "kosmos-member-g", MemberTolerations: webTolerations}
	o.GroupSelector, o.AvoidGroups = GroupPlacement(many, o.VirtualNode)
	if _, err := MemberPod(hp, o); err == nil || !strings.Contains(err.Error(), "node-affinity terms") {
		t.Errorf("5×5×5 terms: %v", err)
	}
}

func termStrings(terms []corev1.NodeSelectorTerm) [][]string {
	var out [][]string
	for _, t := range terms {
		var s []string
		for _, e := range t.MatchExpressions {
			s = append(s, e.Key+" "+string(e.Operator)+" "+strings.Join(e.Values, ","))
		}
		out = append(out, s)
	}
	return out
}

// anyTermMatches evaluates terms as the scheduler does.
func anyTermMatches(terms []corev1.NodeSelectorTerm, l map[string]string) bool {
	ok, err := nodeaffinity.NewLazyErrorNodeSelector(&corev1.NodeSelector{NodeSelectorTerms: terms}).Match(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: l}})
	return err == nil && ok
}
