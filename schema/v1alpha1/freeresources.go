package v1alpha1

import "slices"

// The contract of a virtual node, written by the tree and read by the
// scheduler.
const (
	// LabelCluster names the member cluster a virtual node stands for.
	LabelCluster = "kosmos.io/cluster"
	// TaintLeaf (NoSchedule) keeps pods off virtual nodes unless a policy
	// sends them there.
	TaintLeaf = "kosmos.io/leaf"
	// AnnotationFreeResources holds the member cluster's FreeResources as
	// JSON; the scheduler's leaf-fit check reads it.
	AnnotationFreeResources = "kosmos.io/free-resources"
	// ManagedByTree is the app.kubernetes.io/managed-by value of what the
	// tree writes, virtual nodes among them: they are no machines, so the
	// network planner leaves them out.
	ManagedByTree = "kosmos-tree"
)

// FreeResources summarises what a member cluster can still take on any
// single node: the free CPU, memory, pod slots and every other allocatable
// resource (extended resources such as nvidia.com/gpu, ephemeral-storage,
// hugepages) of its nodes, reduced to the nodes no other node beats on
// every resource (a pod fits on some node exactly when it fits on one of
// these).
type FreeResources struct {
	// Nodes is the reduced list, at most MaxFreeNodes entries.
	Nodes []FreeNode `json:"nodes"`
}

// FreeNode is one node's free capacity.
type FreeNode struct {
	// CPUMilli is free CPU in millicores.
	CPUMilli int64 `json:"cpuMilli"`
	// MemoryBytes is free memory in bytes.
	MemoryBytes int64 `json:"memoryBytes"`
	// Pods is the number of free pod slots.
	Pods int64 `json:"pods"`
	// Other is the free amount of every other resource the node has, by
	// resource name, in the resource's base unit (devices, bytes).
	// +optional
	Other map[string]int64 `json:"other,omitempty"`
}

// covers says whether k has at least n's room on every resource.
func (k FreeNode) covers(n FreeNode) bool {
	if k.CPUMilli < n.CPUMilli || k.MemoryBytes < n.MemoryBytes || k.Pods < n.Pods {
		return false
	}
	for name, v := range n.Other {
		if v > 0 && k.Other[name] < v {
			return false
		}
	}
	return true
}

// MaxFreeNodes bounds the summary's size on the node object.
const MaxFreeNodes = 32

// Fits says whether a pod requesting cpuMilli, memoryBytes and other (by
// resource name, in base units; nil for none) fits on at least one node of
// the summary.
func (f FreeResources) Fits(cpuMilli, memoryBytes int64, other map[string]int64) bool {
	pod := FreeNode{CPUMilli: cpuMilli, MemoryBytes: memoryBytes, Pods: 1, Other: other}
	return slices.ContainsFunc(f.Nodes, func(n FreeNode) bool { return n.covers(pod) })
}

// SummarizeFree reduces per-node free capacity to the nodes not dominated
// by another (largest CPU first), keeping at most MaxFreeNodes of them.
func SummarizeFree(nodes []FreeNode) FreeResources {
	ns := slices.Clone(nodes)
	slices.SortFunc(ns, func(a, b FreeNode) int {
		switch {
		case a.CPUMilli != b.CPUMilli:
			return int(sign(b.CPUMilli - a.CPUMilli))
		case a.MemoryBytes != b.MemoryBytes:
			return int(sign(b.MemoryBytes - a.MemoryBytes))
		default:
			return int(sign(b.Pods - a.Pods))
		}
	})
	var out []FreeNode
	for _, n := range ns {
		if n.Pods < 1 {
			continue
		}
		dominated := slices.ContainsFunc(out, func(k FreeNode) bool { return k.covers(n) })
		if !dominated {
			out = append(out, n)
		}
	}
	if len(out) > MaxFreeNodes {
		out = out[:MaxFreeNodes]
	}
	return FreeResources{Nodes: out}
}

func sign(x int64) int64 {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}
