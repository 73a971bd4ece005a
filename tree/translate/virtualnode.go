// This file is the virtual nodes' pure core: the Node objects of one
// member, computed from the host's Cluster object and what the member's
// API server shows.

package translate

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	resourcehelper "k8s.io/component-helpers/resource"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Member is what the tree reads of a member cluster.
type Member struct {
	Nodes []corev1.Node
	Pods  []corev1.Pod
}

// free is one member node's room left for pods from the host; usable
// when the node is Ready and schedulable.
type free struct {
	node                    *corev1.Node
	cpuMilli, memBytes, pod int64
	// other is the room left of every other allocatable resource
	// (extended resources, ephemeral-storage, hugepages).
	other  corev1.ResourceList
	usable bool
}

// counted are the resources free keeps as numbers; every other one is in
// free.other.
var counted = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods}

// VirtualNodes computes the virtual nodes of cluster c in the host:
// Aggregate, one node "kosmos-<cluster>" whose allocatable is the sum over
// the member's Ready, schedulable, selected nodes of allocatable minus the
// requests of running pods Kosmos did not create; OneToOne, one node per
// selected member node ("kosmos-<cluster>.<node>"), cordoned when it is and
// with its Ready condition, so that cordoning or losing a member node never
// removes the pods on it. Each carries the cluster, region, zone and role
// labels plus the topology's extra labels, the leaf taint plus the extra
// taints, and the free-resource summary the scheduler checks. In
// Aggregate mode each of tree.nodeGroups adds a node of its own
// (GroupNodeName) over the member nodes it takes, which the default node
// then leaves out, with the group's labels and taints instead of the
// cluster's extra ones. Nodes come sorted by name.
func VirtualNodes(c *v1alpha1.Cluster, m Member) []*corev1.Node {
	frees := freeOf(c, m)
	if c.Spec.Tree.Mode == v1alpha1.TreeOneToOne {
		var out []*corev1.Node
		for _, f := range frees {
			n := base(c, VirtualNodeName(c.Name, f.node.Name), c.Spec.Tree.NodeLabels, c.Spec.Tree.NodeTaints, []free{f})
			n.Labels[LabelMemberNode] = f.node.Name
			maps.Copy(n.Labels, zoneLabels(f.node))
			n.Spec.Unschedulable = f.node.Spec.Unschedulable
			st, reason := corev1.ConditionTrue, "MemberNodeReady"
			if !ready(f.node) {
				st, reason = corev1.ConditionFalse, "MemberNodeNotReady"
			}
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st, Reason: reason,
				Message: "member node " + f.node.Name + " of cluster " + c.Name}}
			out = append(out, n)
		}
		return out
	}
	t := &c.Spec.Tree
	out := []*corev1.Node{base(c, VirtualNodeName(c.Name, ""), t.NodeLabels, t.NodeTaints, usable(frees))}
	for _, g := range t.NodeGroups {
		n := base(c, GroupNodeName(c.Name, g.Name), g.Labels, g.Taints, usable(groupFree(c, m, g.Name)))
		n.Labels[LabelNodeGroup] = g.Name
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *corev1.Node) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// GroupNodeName is the host's name for the virtual node of node group
// group of cluster: "kosmos-<cluster>.<group>.group". Like a OneToOne
// name it starts with the cluster's and a dot, so it is no other
// cluster's; the ".group" suffix keeps it apart from the cluster's own
// nodes' names unless a member node is literally named "<group>.group".
func GroupNodeName(cluster, group string) string {
	return VirtualNodeName(cluster, group+".group")
}

// NodeGroupOf is the name of the node group of c a member node with
// labels l belongs to: the first group whose selector matches, "" for
// none. Empty selectors match nothing (validation refuses them).
func NodeGroupOf(c *v1alpha1.Cluster, l map[string]string) string {
	for _, g := range c.Spec.Tree.NodeGroups {
		if len(g.NodeSelector) > 0 && labels.SelectorFromSet(g.NodeSelector).Matches(labels.Set(l)) {
			return g.Name
		}
	}
	return ""
}

// groupFree lists the member nodes of node group group (all of them,
// whatever tree.nodeSelector says) with their free room.
func groupFree(c *v1alpha1.Cluster, m Member, group string) []free {
	return freeWhere(m, func(n *corev1.Node) bool { return NodeGroupOf(c, n.Labels) == group })
}

// GroupPlacement says where in the member the copy of a pod bound to
// virtual node node of c runs (Aggregate mode): on a node group's node,
// on that group's member nodes (selector) and off those of every earlier
// group (avoid: a node in two groups belongs to the first, NodeGroupOf,
// whose virtual node counts its room); on the cluster's default node, off
// every group's member nodes (avoid: the groups' selectors), for their
// room is counted on the groups' nodes. Both are nil without groups and in
// OneToOne mode.
func GroupPlacement(c *v1alpha1.Cluster, node string) (selector map[string]string, avoid []map[string]string) {
	if c.Spec.Tree.Mode == v1alpha1.TreeOneToOne {
		return nil, nil
	}
	for _, g := range c.Spec.Tree.NodeGroups {
		if node == GroupNodeName(c.Name, g.Name) {
			return g.NodeSelector, avoid
		}
		if len(g.NodeSelector) > 0 {
			avoid = append(avoid, g.NodeSelector)
		}
	}
	if node != VirtualNodeName(c.Name, "") {
		return nil, nil
	}
	return nil, avoid
}

// VirtualNodeName is the host's name for member node node of cluster
// (empty: the cluster's Aggregate node): "kosmos-<cluster>" and
// "kosmos-<cluster>.<node>". A cluster name is a DNS-1123 label (no dot;
// CheckClusterName), so the first dot ends it: no two pairs of cluster and
// node share a name, and no OneToOne name is an Aggregate one.
func VirtualNodeName(cluster, node string) string {
	if node == "" {
		return "kosmos-" + cluster
	}
	return "kosmos-" + cluster + "." + node
}

// CheckClusterName refuses a Cluster object whose name is not a DNS-1123
// label (the topology allows no other): with a dot in it, its virtual
// node and volume names could be another cluster's.
func CheckClusterName(name string) error {
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return fmt.Errorf("cluster name %q is not a DNS-1123 label (%s): its virtual nodes could take another cluster's names", name, msgs[0])
	}
	return nil
}

func usable(frees []free) []free {
	var out []free
	for _, f := range frees {
		if f.usable {
			out = append(out, f)
		}
	}
	return out
}

func zoneLabels(n *corev1.Node) map[string]string {
	out := map[string]string{}
	for _, k := range []string{corev1.LabelTopologyZone, corev1.LabelTopologyRegion} {
		if v, ok := n.Labels[k]; ok {
			out[k] = v
		}
	}
	return out
}

// base is a virtual node of c named name over frees, with the extra
// labels and taints given.
func base(c *v1alpha1.Cluster, name string, extraLabels map[string]string, extraTaints []v1alpha1.Taint, frees []free) *corev1.Node {
	n := &corev1.Node{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, Annotations: map[string]string{}},
	}
	maps.Copy(n.Labels, c.Spec.Labels)
	maps.Copy(n.Labels, extraLabels)
	for k, v := range map[string]string{
		LabelCluster:         c.Name,
		"type":               "virtual-kubelet",
		"kubernetes.io/role": "agent",
		corev1.LabelHostname: name,
		"node.kubernetes.io/exclude-from-external-load-balancers": "true",
	} {
		n.Labels[k] = v
	}
	if c.Spec.Region != "" {
		n.Labels[corev1.LabelTopologyRegion] = c.Spec.Region
	}
	if c.Spec.Zone != "" {
		n.Labels[corev1.LabelTopologyZone] = c.Spec.Zone
	}
	n.Spec.Taints = []corev1.Taint{{Key: TaintLeaf, Value: "true", Effect: corev1.TaintEffectNoSchedule}}
	for _, t := range extraTaints {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: t.Key, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	res, summary := sumFree(frees)
	n.Status.Capacity, n.Status.Allocatable = res, res.DeepCopy()
	maps.Copy(n.Labels, platformLabels(frees))
	raw, _ := json.Marshal(v1alpha1.SummarizeFree(summary)) // plain structs: cannot fail
	n.Annotations[v1alpha1.AnnotationFreeResources] = string(raw)
	return n
}

// sumFree is the room of frees: summed over them (the virtual node's
// capacity and allocatable: every resource), and node by node (the
// free-resource summary).
func sumFree(frees []free) (corev1.ResourceList, []v1alpha1.FreeNode) {
	var cpu, mem, pods int64
	other := corev1.ResourceList{}
	var summary []v1alpha1.FreeNode
	for _, f := range frees {
		cpu, mem, pods = cpu+f.cpuMilli, mem+f.memBytes, pods+f.pod
		fn := v1alpha1.FreeNode{CPUMilli: f.cpuMilli, MemoryBytes: f.memBytes, Pods: f.pod}
		for name, q := range f.other {
			sum := other[name]
			sum.Add(q)
			other[name] = sum
			if fn.Other == nil {
				fn.Other = map[string]int64{}
			}
			fn.Other[string(name)] = q.Value()
		}
		summary = append(summary, fn)
	}
	res := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(cpu, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(mem, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(pods, resource.DecimalSI),
	}
	maps.Copy(res, other)
	return res, summary
}

// platformLabels are the os and architecture labels of a virtual node:
// the member nodes' own when they all agree, none when they differ (a
// mixed cluster's Aggregate node promises no architecture; OneToOne nodes
// carry their member node's). Nodes that state no os are linux, as the
// kubelet has it.
func platformLabels(frees []free) map[string]string {
	out := map[string]string{}
	for _, k := range []string{corev1.LabelOSStable, corev1.LabelArchStable} {
		seen := map[string]bool{}
		for _, f := range frees {
			v := f.node.Labels[k]
			if v == "" && k == corev1.LabelOSStable {
				v = "linux"
			}
			seen[v] = true
		}
		if len(seen) == 1 && !seen[""] {
			out[k] = slices.Collect(maps.Keys(seen))[0]
		}
	}
	return out
}

// roomLeft is, for each resource of alloc other than the counted ones,
// what used leaves of it (never below zero).
func roomLeft(alloc, used corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for name, q := range alloc {
		if slices.Contains(counted, name) {
			continue
		}
		left := q.DeepCopy()
		if u, ok := used[name]; ok {
			left.Sub(u)
		}
		if left.Sign() < 0 {
			left = *resource.NewQuantity(0, q.Format)
		}
		out[name] = left
	}
	return out
}

// freeOf lists the member nodes of c's default virtual node(s) with their
// free room, by name: those tree.nodeSelector selects and no node group
// takes.
func freeOf(c *v1alpha1.Cluster, m Member) []free {
	sel := labels.SelectorFromSet(c.Spec.Tree.NodeSelector)
	return freeWhere(m, func(n *corev1.Node) bool {
		return sel.Matches(labels.Set(n.Labels)) && (c.Spec.Tree.Mode == v1alpha1.TreeOneToOne || NodeGroupOf(c, n.Labels) == "")
	})
}

// freeWhere lists the member nodes pick picks with their free room, by
// name.
func freeWhere(m Member, pick func(*corev1.Node) bool) []free {
	used := map[string]corev1.ResourceList{}
	count := map[string]int64{}
	for i := range m.Pods {
		p := &m.Pods[i]
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.Labels[LabelOrigin] != "" {
			continue
		}
		req := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})
		acc := used[p.Spec.NodeName]
		if acc == nil {
			acc = corev1.ResourceList{}
			used[p.Spec.NodeName] = acc
		}
		for k, q := range req {
			sum := acc[k]
			sum.Add(q)
			acc[k] = sum
		}
		count[p.Spec.NodeName]++
	}
	var out []free
	for i := range m.Nodes {
		n := &m.Nodes[i]
		if !pick(n) {
			continue
		}
		a := n.Status.Allocatable
		u := used[n.Name]
		out = append(out, free{
			node:     n,
			cpuMilli: max(0, a.Cpu().MilliValue()-u.Cpu().MilliValue()),
			memBytes: max(0, a.Memory().Value()-u.Memory().Value()),
			pod:      max(0, a.Pods().Value()-count[n.Name]),
			other:    roomLeft(a, u),
			usable:   ready(n) && !n.Spec.Unschedulable,
		})
	}
	slices.SortFunc(out, func(a, b free) int { return cmp.Compare(a.node.Name, b.node.Name) })
	return out
}

func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// UsableNodes counts the member nodes that give the host's pods room:
// selected by the cluster's node selector or a node group's, Ready and
// schedulable.
func UsableNodes(c *v1alpha1.Cluster, m Member) int {
	n := len(usable(freeOf(c, m)))
	if c.Spec.Tree.Mode != v1alpha1.TreeOneToOne {
		for _, g := range c.Spec.Tree.NodeGroups {
			n += len(usable(groupFree(c, m, g.Name)))
		}
	}
	return n
}

// ReadyCondition is the Ready condition of cluster's virtual nodes: True
// while the member answers (probeErr nil) and has a usable node; False
// when it has none; Unknown once it has been silent for grace; nil while
// it is silent for less (the nodes keep what they show).
func ReadyCondition(cluster string, probeErr error, silent, grace time.Duration, usableNodes int, now metav1.Time) *corev1.NodeCondition {
	cond := &corev1.NodeCondition{Type: corev1.NodeReady, LastHeartbeatTime: now, LastTransitionTime: now}
	switch {
	case probeErr != nil && silent < grace:
		return nil
	case probeErr != nil:
		cond.Status, cond.Reason = corev1.ConditionUnknown, "MemberUnreachable"
		cond.Message = fmt.Sprintf("the API server of member cluster %s has not answered for %s", cluster, silent.Round(time.Second))
	case usableNodes == 0:
		cond.Status, cond.Reason = corev1.ConditionFalse, "NoReadyMemberNodes"
		cond.Message = fmt.Sprintf("member cluster %s has no Ready, schedulable node the tree selects", cluster)
	default:
		cond.Status, cond.Reason = corev1.ConditionTrue, "MemberReady"
		cond.Message = fmt.Sprintf("member cluster %s answers and has Ready nodes", cluster)
	}
	return cond
}

// NodeReadyCondition is the Ready condition to write on virtual node n
// (from VirtualNodes) given the cluster's, cond: a OneToOne node whose
// member node is not Ready says so while the member itself is fine.
func NodeReadyCondition(n *corev1.Node, cond *corev1.NodeCondition) *corev1.NodeCondition {
	own := n.Status.Conditions
	if cond == nil || cond.Status != corev1.ConditionTrue || len(own) == 0 || own[0].Status == corev1.ConditionTrue {
		return cond
	}
	out := own[0]
	out.LastHeartbeatTime, out.LastTransitionTime = cond.LastHeartbeatTime, cond.LastTransitionTime
	return &out
}
