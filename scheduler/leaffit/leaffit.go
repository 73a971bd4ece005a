package leaffit

import (
	"context"
	"encoding/json"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	resourcehelper "k8s.io/component-helpers/resource"
	fwk "k8s.io/kube-scheduler/framework"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Name of the plugin in the scheduler's configuration.
const Name = "KosmosLeafFit"

// LeafFit lets a pod onto a virtual node only when one member node can hold
// it, per the node's free-resource summary.
type LeafFit struct {
	parsed sync.Map // node name → *summaryCache
}

type summaryCache struct {
	raw  string
	free v1alpha1.FreeResources
	err  error
}

var _ fwk.FilterPlugin = (*LeafFit)(nil)

// New builds the plugin (it takes no args).
func New(context.Context, runtime.Object, fwk.Handle) (fwk.Plugin, error) {
	return &LeafFit{}, nil
}

// Name of the plugin.
func (*LeafFit) Name() string { return Name }

// summary parses a node's annotation once per distinct value.
func (pl *LeafFit) summary(node, raw string) (v1alpha1.FreeResources, error) {
	if c, ok := pl.parsed.Load(node); ok && c.(*summaryCache).raw == raw {
		return c.(*summaryCache).free, c.(*summaryCache).err
	}
	c := &summaryCache{raw: raw}
	c.err = json.Unmarshal([]byte(raw), &c.free)
	pl.parsed.Store(node, c)
	return c.free, c.err
}

// Filter checks the pod's requests against the summary of virtual nodes.
func (pl *LeafFit) Filter(_ context.Context, _ fwk.CycleState, pod *corev1.Pod, ni fwk.NodeInfo) *fwk.Status {
	n := ni.Node()
	if _, virtual := n.Labels[v1alpha1.LabelCluster]; !virtual {
		return nil
	}
	raw, ok := n.Annotations[v1alpha1.AnnotationFreeResources]
	if !ok {
		return fwk.NewStatus(fwk.Unschedulable, "virtual node has no free-resource summary yet")
	}
	free, err := pl.summary(n.Name, raw)
	if err != nil {
		return fwk.NewStatus(fwk.Unschedulable, "virtual node's free-resource summary is unreadable")
	}
	req := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	if free.Fits(req.Cpu().MilliValue(), req.Memory().Value(), otherRequests(req)) {
		return nil
	}
	return fwk.NewStatus(fwk.Unschedulable, "no single node of the member cluster has room for the pod")
}

// otherRequests are a pod's requests of resources other than cpu, memory
// and pods (extended resources, ephemeral-storage, hugepages), in base
// units, as the free-resource summary counts them; nil for none.
func otherRequests(req corev1.ResourceList) map[string]int64 {
	var out map[string]int64
	for name, q := range req {
		switch name {
		case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods:
			continue
		}
		if q.Sign() <= 0 {
			continue
		}
		if out == nil {
			out = map[string]int64{}
		}
		out[string(name)] = q.Value()
	}
	return out
}
