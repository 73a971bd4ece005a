package distribution

import (
	"context"
	"fmt"
	"io"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"kosmos.io/kosmos/scheduler/policies"
)

// Name of the plugin in the scheduler's configuration.
const Name = "KosmosDistribution"

// Distribution places replicas of a workload matched by a DistributionPolicy
// across clusters by weights or fixed counts, or by spread, counting what is
// already placed in the scheduler's snapshot.
type Distribution struct {
	h    fwk.Handle
	pols *policies.Store // owned: closed with the plugin
	args Args

	mu    sync.Mutex
	nodes map[string]*nodeCount // by node name
}

var (
	_ fwk.PreFilterPlugin   = (*Distribution)(nil)
	_ fwk.FilterPlugin      = (*Distribution)(nil)
	_ fwk.ScorePlugin       = (*Distribution)(nil)
	_ fwk.EnqueueExtensions = (*Distribution)(nil)
	_ io.Closer             = (*Distribution)(nil)
)

// New builds the plugin from its args and starts its policy store.
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	args, err := ParseArgs(obj)
	if err != nil {
		return nil, err
	}
	pols, err := policies.Start(klog.NewContext(ctx, klog.LoggerWithName(klog.FromContext(ctx), Name)), h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return &Distribution{h: h, pols: pols, args: args}, nil
}

// Name of the plugin.
func (*Distribution) Name() string { return Name }

// Close stops the plugin's policy store.
func (pl *Distribution) Close() error {
	pl.pols.Close()
	return nil
}

// PreFilter decides, once per pod, which clusters may take it.
func (pl *Distribution) PreFilter(ctx context.Context, state fwk.CycleState, pod *corev1.Pod, _ []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	pol := pl.pols.Match(pod)
	if pol == nil {
		state.Write(stateKey, &decision{}) // LeafTaint reads "no policy" from here
		return nil, fwk.NewStatus(fwk.Skip)
	}
	host := pol.Host
	if host == "" {
		host = pl.args.HostCluster
	}
	key, total := pl.pols.Workload(pod)
	infos, err := pl.h.SnapshotSharedLister().NodeInfos().List()
	if err != nil {
		return nil, fwk.AsStatus(err)
	}
	placed, count := pl.count(infos, pod, key, pol, host)
	if total == 0 || total <= count { // unknown, or a surge: this pod is the next one
		total = max(total, count+1)
	}
	d := &decision{pol: pol, dec: pol.Split.Next(total, placed), host: host, refusal: map[string]*fwk.Status{}}
	state.Write(stateKey, d)
	klog.FromContext(ctx).V(4).Info("distribution", "pod", klog.KObj(pod), "policy", pol.Name, "total", total, "placed", placed, "allowed", d.dec.Allowed)
	if !pol.Required {
		return nil, nil
	}
	return d.narrow(infos)
}

// narrow keeps, under a Required policy, only the allowed clusters' nodes
// for the filters, which spares every other plugin the nodes the policy
// rules out; it records why each other cluster is refused.
func (d *decision) narrow(infos []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	names := sets.New[string]()
	for _, ni := range infos {
		n := ni.Node()
		if n == nil {
			continue
		}
		c := policies.ClusterOf(n, d.host)
		if d.dec.Allowed[c] {
			names.Insert(n.Name)
		} else if _, ok := d.refusal[c]; !ok {
			why := d.dec.Why[c]
			if why == "" {
				why = "not a target of the policy"
			}
			d.refusal[c] = fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("distribution policy %s: cluster %s %s", d.pol.Name, c, why))
		}
	}
	if names.Len() == 0 {
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("distribution policy %s: no node in any cluster that may take the pod (%v)", d.pol.Name, d.dec.Why))
	}
	return &fwk.PreFilterResult{NodeNames: names}, nil
}

// PreFilterExtensions: none (preemption does not reason about shares).
func (*Distribution) PreFilterExtensions() fwk.PreFilterExtensions { return nil }

// Filter rejects, under a Required policy, nodes of clusters that hold
// their share or are not targets.
func (pl *Distribution) Filter(_ context.Context, state fwk.CycleState, _ *corev1.Pod, ni fwk.NodeInfo) *fwk.Status {
	d, ok := readState(state)
	if !ok || !d.pol.Required {
		return nil
	}
	c := policies.ClusterOf(ni.Node(), d.host)
	if d.dec.Allowed[c] {
		return nil
	}
	if st, ok := d.refusal[c]; ok {
		return st
	}
	return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("distribution policy %s: cluster %s is not a target", d.pol.Name, c))
}

// Score prefers the clusters furthest below their share.
func (pl *Distribution) Score(_ context.Context, state fwk.CycleState, _ *corev1.Pod, ni fwk.NodeInfo) (int64, *fwk.Status) {
	d, ok := readState(state)
	if !ok {
		return 0, nil
	}
	return d.dec.Score[policies.ClusterOf(ni.Node(), d.host)], nil
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
