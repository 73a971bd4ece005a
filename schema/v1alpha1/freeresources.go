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
// single node: the free CPU, memory and pod slots of its nodes, reduced to
// the nodes no other node beats on every resource (a pod fits on some node
// exactly when it fits on one of these).
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
}

// MaxFreeNodes bounds the summary's size on the node object.
const MaxFreeNodes = 32

// Fits says whether a pod requesting cpuMilli and memoryBytes fits on at
// least one node of the summary.
func (f FreeResources) Fits(cpuMilli, memoryBytes int64) bool {
	return slices.ContainsFunc(f.Nodes, func(n FreeNode) bool {
		return n.Pods >= 1 && n.CPUMilli >= cpuMilli && n.MemoryBytes >= memoryBytes
	})
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
		dominated := slices.ContainsFunc(out, func(k FreeNode) bool {
			return k.CPUMilli >= n.CPUMilli && k.MemoryBytes >= n.MemoryBytes && k.Pods >= n.Pods
		})
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
