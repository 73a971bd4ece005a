// Package scheduler holds the kube-scheduler framework plugins of Kosmos:
// Distribution (replicas split over clusters by policy), LeafFit (a pod goes
// to a member cluster only when one of its nodes can hold it) and LeafTaint
// (the virtual-node taint is tolerated for pods a policy sends there).
package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	resourcehelper "k8s.io/component-helpers/resource"
	v1helper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"

	"kosmos.io/kosmos/scheduler/split"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Plugin names.
const (
	NameDistribution = "KosmosDistribution"
	NameLeafFit      = "KosmosLeafFit"
	NameLeafTaint    = "KosmosLeafTaint"
)

// DistributionArgs are the Distribution plugin's arguments.
type DistributionArgs struct {
	// HostCluster names the host's own nodes' cluster when a policy does not
	// (default "host").
	HostCluster string `json:"hostCluster,omitempty"`
}

// Registry is what `kosmos scheduler` registers with kube-scheduler.
func Registry() frameworkruntime.Registry {
	return frameworkruntime.Registry{
		NameDistribution: NewDistribution,
		NameLeafFit:      NewLeafFit,
		NameLeafTaint:    NewLeafTaint,
	}
}

// Distribution places replicas of a workload matched by a DistributionPolicy
// across clusters by weights or fixed counts, or by spread, counting what is
// already placed in the scheduler's snapshot.
type Distribution struct {
	h    fwk.Handle
	pols *policies
	args DistributionArgs

	mu    sync.Mutex
	nodes map[string]*nodeCount // by node name
}

var (
	_ fwk.PreFilterPlugin   = (*Distribution)(nil)
	_ fwk.FilterPlugin      = (*Distribution)(nil)
	_ fwk.ScorePlugin       = (*Distribution)(nil)
	_ fwk.EnqueueExtensions = (*Distribution)(nil)
)

// NewDistribution builds the plugin from its args.
func NewDistribution(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	var args DistributionArgs
	if obj != nil {
		if err := frameworkruntime.DecodeInto(obj, &args); err != nil {
			return nil, fmt.Errorf("%s args: %w", NameDistribution, err)
		}
	}
	if args.HostCluster == "" {
		args.HostCluster = "host"
	}
	if errs := validation.IsDNS1123Label(args.HostCluster); len(errs) > 0 {
		return nil, fmt.Errorf("%s args: hostCluster %q: %s", NameDistribution, args.HostCluster, strings.Join(errs, "; "))
	}
	pols, err := policiesFor(ctx, h)
	if err != nil {
		return nil, err
	}
	return &Distribution{h: h, pols: pols, args: args}, nil
}

// Name of the plugin.
func (*Distribution) Name() string { return NameDistribution }

const stateKey fwk.StateKey = NameDistribution

type decision struct {
	pol  *policy
	dec  split.Decision
	host string
	// refusal per refused cluster, built once per pod.
	refusal map[string]*fwk.Status
}

func (d *decision) Clone() fwk.StateData { return d }

// PreFilter decides, once per pod, which clusters may take it.
func (pl *Distribution) PreFilter(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, _ []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	pol := pl.pols.match(pod)
	if pol == nil {
		state.Write(stateKey, &decision{}) // LeafTaint reads "no policy" from here
		return nil, fwk.NewStatus(fwk.Skip)
	}
	host := pol.host
	if host == "" {
		host = pl.args.HostCluster
	}
	key, total := pl.pols.workload(pod)
	infos, err := pl.h.SnapshotSharedLister().NodeInfos().List()
	if err != nil {
		return nil, fwk.AsStatus(err)
	}
	placed, count := pl.count(infos, pod, key, pol, host)
	if total == 0 || total <= count { // unknown, or a surge: this pod is the next one
		total = max(total, count+1)
	}
	st := &decision{pol: pol, dec: pol.split.Next(total, placed), host: host, refusal: map[string]*fwk.Status{}}
	state.Write(stateKey, st)
	klog.FromContext(ctx).V(4).Info("distribution", "pod", klog.KObj(pod), "policy", pol.name, "total", total, "placed", placed, "allowed", st.dec.Allowed)
	if !pol.required {
		return nil, nil
	}
	// Required: only the allowed clusters' nodes go on to the filters, which
	// spares every other plugin the nodes the policy rules out.
	names := sets.New[string]()
	for _, ni := range infos {
		if n := ni.Node(); n != nil {
			c := clusterOf(n, host)
			if st.dec.Allowed[c] {
				names.Insert(n.Name)
			} else if _, ok := st.refusal[c]; !ok {
				why := st.dec.Why[c]
				if why == "" {
					why = "not a target of the policy"
				}
				st.refusal[c] = fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("distribution policy %s: cluster %s %s", pol.name, c, why))
			}
		}
	}
	if names.Len() == 0 {
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("distribution policy %s: no node in any cluster that may take the pod (%v)", pol.name, st.dec.Why))
	}
	return &fwk.PreFilterResult{NodeNames: names}, nil
}

// count is how many replicas of the pod's workload each cluster holds in
// the snapshot (assumed pods included). Per-node counts by controller are
// cached by the node's generation, so a cycle recounts only the nodes that
// changed since the last one (usually the one the last pod went to) instead
// of every pod on every node. Pods without a controller are counted by
// scanning, matched by the policy.
func (pl *Distribution) count(infos []fwk.NodeInfo, pod *corev1.Pod, key string, pol *policy, host string) (map[string]int, int) {
	placed := map[string]int{}
	count := 0
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.nodes == nil {
		pl.nodes = map[string]*nodeCount{}
	}
	seen := make(map[string]bool, len(infos))
	for _, ni := range infos {
		n := ni.Node()
		if n == nil {
			continue
		}
		seen[n.Name] = true
		if key == "" {
			c := clusterOf(n, host)
			for _, pi := range ni.GetPods() {
				p := pi.GetPod()
				if p.Namespace == pod.Namespace && p.UID != pod.UID && controllerUID(p) == "" && pol.matches(p, pl.pols) {
					placed[c]++
					count++
				}
			}
			continue
		}
		nc := pl.nodes[n.Name]
		if nc == nil || nc.gen != ni.GetGeneration() {
			nc = &nodeCount{gen: ni.GetGeneration(), byController: map[string]int{}}
			nc.cluster, nc.virtual = n.Labels[LabelCluster]
			for _, pi := range ni.GetPods() {
				if k := controllerUID(pi.GetPod()); k != "" {
					nc.byController[k]++
				}
			}
			pl.nodes[n.Name] = nc
		}
		if k := nc.byController[key]; k > 0 {
			c := host
			if nc.virtual {
				c = nc.cluster
			}
			placed[c] += k
			count += k
		}
	}
	if len(pl.nodes) > len(seen) { // forget removed nodes
		for name := range pl.nodes {
			if !seen[name] {
				delete(pl.nodes, name)
			}
		}
	}
	return placed, count
}

type nodeCount struct {
	gen          int64 // the NodeInfo's; any change of the node or its pods bumps it
	cluster      string
	virtual      bool
	byController map[string]int // controller UID → pods
}

func controllerUID(p *corev1.Pod) string {
	if r := metav1.GetControllerOfNoCopy(p); r != nil {
		return string(r.UID)
	}
	return ""
}

// PreFilterExtensions: none (preemption does not reason about shares).
func (*Distribution) PreFilterExtensions() fwk.PreFilterExtensions { return nil }

// Filter rejects, under a Required policy, nodes of clusters that hold
// their share or are not targets.
func (pl *Distribution) Filter(_ context.Context, state fwk.CycleState, _ *corev1.Pod, ni fwk.NodeInfo) *fwk.Status {
	d, ok := readState(state)
	if !ok || !d.pol.required {
		return nil
	}
	c := clusterOf(ni.Node(), d.host)
	if d.dec.Allowed[c] {
		return nil
	}
	if st, ok := d.refusal[c]; ok {
		return st
	}
	return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("distribution policy %s: cluster %s is not a target", d.pol.name, c))
}

// readState is this cycle's decision for a pod a policy governs.
func readState(state fwk.CycleState) (*decision, bool) {
	d, known := policyOf(state)
	return d, known && d.pol != nil
}

// policyOf is what Distribution's PreFilter decided this cycle (pol nil: no
// policy governs the pod); known is false when it did not run.
func policyOf(state fwk.CycleState) (d *decision, known bool) {
	v, err := state.Read(stateKey)
	if err != nil {
		return nil, false
	}
	d, known = v.(*decision)
	return d, known
}

// Score prefers the clusters furthest below their share.
func (pl *Distribution) Score(_ context.Context, state fwk.CycleState, _ *corev1.Pod, ni fwk.NodeInfo) (int64, *fwk.Status) {
	d, ok := readState(state)
	if !ok {
		return 0, nil
	}
	return d.dec.Score[clusterOf(ni.Node(), d.host)], nil
}

// ScoreExtensions: scores are already 0..100.
func (*Distribution) ScoreExtensions() fwk.ScoreExtensions { return nil }

// EventsToRegister: a pod rejected for its share may fit once pods go away,
// nodes appear or change, or policies change (policy changes arrive as no
// cluster event; the periodic flush of unschedulable pods covers them).
func (*Distribution) EventsToRegister(context.Context) ([]fwk.ClusterEventWithHint, error) {
	return []fwk.ClusterEventWithHint{
		{Event: fwk.ClusterEvent{Resource: fwk.Pod, ActionType: fwk.Delete}},
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.UpdateNodeLabel}},
	}, nil
}

// LeafFit lets a pod onto a virtual node only when one member node can hold
// it, per the node's free-resource summary: a cluster whose total is large
// but fragmented does not get pods none of its nodes can run.
type LeafFit struct {
	parsed sync.Map // node name → summaryCache
}

type summaryCache struct {
	raw  string
	free v1alpha1.FreeResources
	err  error
}

var _ fwk.FilterPlugin = (*LeafFit)(nil)

// NewLeafFit builds the plugin (no args).
func NewLeafFit(context.Context, runtime.Object, fwk.Handle) (fwk.Plugin, error) {
	return &LeafFit{}, nil
}

// Name of the plugin.
func (*LeafFit) Name() string { return NameLeafFit }

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
	if _, virtual := n.Labels[LabelCluster]; !virtual {
		return nil
	}
	raw, ok := n.Annotations[AnnotationFreeResources]
	if !ok {
		return fwk.NewStatus(fwk.Unschedulable, "virtual node has no free-resource summary yet")
	}
	free, err := pl.summary(n.Name, raw)
	if err != nil {
		return fwk.NewStatus(fwk.Unschedulable, "virtual node's free-resource summary is unreadable")
	}
	req := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	if free.Fits(req.Cpu().MilliValue(), req.Memory().Value()) {
		return nil
	}
	return fwk.NewStatus(fwk.Unschedulable, "no single node of the member cluster has room for the pod")
}

// LeafTaint replaces TaintToleration's filter in the kosmos profile: the
// same rule, except that the virtual-node taint counts as tolerated for pods
// a policy sends to member clusters. Other pods stay off virtual nodes
// unless they tolerate the taint themselves.
type LeafTaint struct{ pols *policies }

var _ fwk.FilterPlugin = (*LeafTaint)(nil)

// NewLeafTaint builds the plugin (no args).
func NewLeafTaint(ctx context.Context, _ runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	pols, err := policiesFor(ctx, h)
	if err != nil {
		return nil, err
	}
	return &LeafTaint{pols: pols}, nil
}

// Name of the plugin.
func (*LeafTaint) Name() string { return NameLeafTaint }

// Filter rejects nodes with untolerated NoSchedule/NoExecute taints.
func (pl *LeafTaint) Filter(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, ni fwk.NodeInfo) *fwk.Status {
	n := ni.Node()
	sent := false
	if len(n.Spec.Taints) > 0 {
		// Distribution's PreFilter matched the pod once this cycle; match
		// here only when that plugin is not in the profile.
		var pol *policy
		if d, known := policyOf(state); known {
			pol = d.pol
		} else {
			pol = pl.pols.match(pod)
		}
		sent = pol != nil && pol.sendsToMembers()
	}
	taint, untolerated := v1helper.FindMatchingUntoleratedTaint(klog.FromContext(ctx), n.Spec.Taints, pod.Spec.Tolerations, func(t *corev1.Taint) bool {
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			return false
		}
		return !(sent && t.Key == TaintLeaf)
	}, false)
	if !untolerated {
		return nil
	}
	return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("node(s) had untolerated taint {%s: %s}", taint.Key, taint.Value))
}
