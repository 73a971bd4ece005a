package leaftaint

import (
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	v1helper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"kosmos.io/kosmos/scheduler/distribution"
	"kosmos.io/kosmos/scheduler/policies"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Name of the plugin in the scheduler's configuration.
const Name = "KosmosLeafTaint"

// LeafTaint is TaintToleration's filter plus the virtual-node taint rule.
type LeafTaint struct {
	pols *policies.Store // owned: closed with the plugin
}

var (
	_ fwk.FilterPlugin = (*LeafTaint)(nil)
	_ io.Closer        = (*LeafTaint)(nil)
)

// New builds the plugin (it takes no args) and starts its policy store.
func New(ctx context.Context, _ runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	pols, err := policies.Start(klog.NewContext(ctx, klog.LoggerWithName(klog.FromContext(ctx), Name)), h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return &LeafTaint{pols: pols}, nil
}

// Name of the plugin.
func (*LeafTaint) Name() string { return Name }

// Close stops the plugin's policy store.
func (pl *LeafTaint) Close() error {
	pl.pols.Close()
	return nil
}

// Filter rejects nodes with untolerated NoSchedule/NoExecute taints.
func (pl *LeafTaint) Filter(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, ni fwk.NodeInfo) *fwk.Status {
	n := ni.Node()
	sent := len(n.Spec.Taints) > 0 && pl.sendsToMembers(state, pod)
	taint, untolerated := v1helper.FindMatchingUntoleratedTaint(klog.FromContext(ctx), n.Spec.Taints, pod.Spec.Tolerations, func(t *corev1.Taint) bool {
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			return false
		}
		return !(sent && t.Key == v1alpha1.TaintLeaf)
	}, false)
	if !untolerated {
		return nil
	}
	return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("node(s) had untolerated taint {%s: %s}", taint.Key, taint.Value))
}

// sendsToMembers says whether a policy sends the pod to member clusters.
// KosmosDistribution's PreFilter matched the pod once this cycle; match
// here only when that plugin is not in the profile.
func (pl *LeafTaint) sendsToMembers(state fwk.CycleState, pod *corev1.Pod) bool {
	pol, known := distribution.MatchedPolicy(state)
	if !known {
		pol = pl.pols.Match(pod)
	}
	return pol != nil && pol.SendsToMembers()
}
