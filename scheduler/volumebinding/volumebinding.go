package volumebinding

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/component-helpers/storage/ephemeral"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/feature"
	stock "k8s.io/kubernetes/pkg/scheduler/framework/plugins/volumebinding"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/volumezone"
)

// Name of the plugin in the scheduler's configuration.
const Name = "KosmosVolumeBinding"

const stateKey fwk.StateKey = Name

// bindTimeoutSeconds is the stock default of VolumeBindingArgs.
const bindTimeoutSeconds = 600

// host is the part of the stock plugins the wrapper calls on the host's
// own nodes.
type host interface {
	fwk.PreFilterPlugin
	fwk.FilterPlugin
}

// VolumeBinding is VolumeBinding and VolumeZone on the host's nodes and
// FitsVirtual on virtual nodes.
type VolumeBinding struct {
	binding *stock.VolumeBinding
	zone    host
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	h       fwk.Handle
}

var (
	_ fwk.PreFilterPlugin   = (*VolumeBinding)(nil)
	_ fwk.FilterPlugin      = (*VolumeBinding)(nil)
	_ fwk.ReservePlugin     = (*VolumeBinding)(nil)
	_ fwk.PreBindPlugin     = (*VolumeBinding)(nil)
	_ fwk.EnqueueExtensions = (*VolumeBinding)(nil)
)

// New builds the plugin (it takes no args) with the stock VolumeBinding
// (default args) and VolumeZone inside.
func New(ctx context.Context, _ runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	fts := feature.NewSchedulerFeaturesFromGates(utilfeature.DefaultFeatureGate)
	b, err := stock.New(ctx, &config.VolumeBindingArgs{BindTimeoutSeconds: bindTimeoutSeconds}, h, fts)
	if err != nil {
		return nil, fmt.Errorf("%s: stock VolumeBinding: %w", Name, err)
	}
	z, err := volumezone.New(ctx, nil, h, fts)
	if err != nil {
		return nil, fmt.Errorf("%s: stock VolumeZone: %w", Name, err)
	}
	core := h.SharedInformerFactory().Core().V1()
	return &VolumeBinding{
		binding: b.(*stock.VolumeBinding), zone: z.(host),
		claims: core.PersistentVolumeClaims().Lister(), volumes: core.PersistentVolumes().Lister(), h: h,
	}, nil
}

// Name of the plugin.
func (*VolumeBinding) Name() string { return Name }

// state is what PreFilter learnt of the pod, for every node.
type state struct {
	claims []Claim
	// binding and zone are the stock PreFilter results (nil: success;
	// Skip: nothing to check; else the reason the host's nodes fail).
	binding, zone *fwk.Status
}

func (s *state) Clone() fwk.StateData { return s }

// PreFilter reads the pod's claims and runs the stock PreFilters. A pod
// with unbound claims goes on to Filter even when they refuse it (an
// unbound Immediate claim, a class the host lacks): their verdict then
// holds for the host's nodes only.
func (pl *VolumeBinding) PreFilter(ctx context.Context, cs fwk.CycleState, pod *corev1.Pod, nodes []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	claims, err := pl.podClaims(pod)
	if err != nil {
		return nil, fwk.AsStatus(err)
	}
	if len(claims) == 0 {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	s := &state{claims: claims}
	_, s.binding = pl.binding.PreFilter(ctx, cs, pod, nodes)
	_, s.zone = pl.zone.PreFilter(ctx, cs, pod, nodes)
	if !AnyUnbound(claims) {
		for _, st := range []*fwk.Status{s.binding, s.zone} {
			if !st.IsSuccess() && !st.IsSkip() {
				return nil, st
			}
		}
	}
	s.binding, s.zone = hostOnly(s.binding), hostOnly(s.zone)
	cs.Write(stateKey, s)
	return nil, nil
}

// hostOnly turns a stock PreFilter error (a host class without a binding
// mode, say) into a refusal of the host's nodes, which Filter applies to
// them alone: an error would end the cycle for the virtual nodes too.
func hostOnly(st *fwk.Status) *fwk.Status {
	if st.Code() != fwk.Error {
		return st
	}
	return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, "on the host's nodes: "+st.Message())
}

// PreFilterExtensions: none.
func (*VolumeBinding) PreFilterExtensions() fwk.PreFilterExtensions { return nil }

// Filter: FitsVirtual on a virtual node, the stock plugins elsewhere.
func (pl *VolumeBinding) Filter(ctx context.Context, cs fwk.CycleState, pod *corev1.Pod, ni fwk.NodeInfo) *fwk.Status {
	s, err := read(cs)
	if err != nil {
		return fwk.AsStatus(err)
	}
	if n := ni.Node(); IsVirtual(n) {
		if reason := FitsVirtual(s.claims, n); reason != "" {
			return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, reason)
		}
		return nil
	}
	for _, in := range []struct {
		pre *fwk.Status
		pl  fwk.FilterPlugin
	}{{s.binding, pl.binding}, {s.zone, pl.zone}} {
		switch {
		case in.pre.IsSkip():
		case !in.pre.IsSuccess():
			return in.pre
		default:
			if st := in.pl.Filter(ctx, cs, pod, ni); !st.IsSuccess() {
				return st
			}
		}
	}
	return nil
}

// Reserve: the stock binder's on host nodes; nothing on virtual nodes (the
// tree creates the claim in the member once the pod is bound there).
func (pl *VolumeBinding) Reserve(ctx context.Context, cs fwk.CycleState, pod *corev1.Pod, nodeName string) *fwk.Status {
	if !pl.hostNode(cs, nodeName) {
		return nil
	}
	return pl.binding.Reserve(ctx, cs, pod, nodeName)
}

// Unreserve undoes Reserve.
func (pl *VolumeBinding) Unreserve(ctx context.Context, cs fwk.CycleState, pod *corev1.Pod, nodeName string) {
	if pl.hostNode(cs, nodeName) {
		pl.binding.Unreserve(ctx, cs, pod, nodeName)
	}
}

// PreBindPreFlight: the stock binder's on host nodes, Skip on virtual
// nodes.
func (pl *VolumeBinding) PreBindPreFlight(ctx context.Context, cs fwk.CycleState, pod *corev1.Pod, nodeName string) (*fwk.PreBindPreFlightResult, *fwk.Status) {
	if !pl.hostNode(cs, nodeName) {
		return &fwk.PreBindPreFlightResult{AllowParallel: true}, fwk.NewStatus(fwk.Skip)
	}
	return pl.binding.PreBindPreFlight(ctx, cs, pod, nodeName)
}

// PreBind: the stock binder's on host nodes (it waits for the host's
// provisioner); nothing on virtual nodes.
func (pl *VolumeBinding) PreBind(ctx context.Context, cs fwk.CycleState, pod *corev1.Pod, nodeName string) *fwk.Status {
	if !pl.hostNode(cs, nodeName) {
		return nil
	}
	return pl.binding.PreBind(ctx, cs, pod, nodeName)
}

// hostNode is onHost with the plugin's node lookup: a node that is not
// in the snapshot is taken as the host's (the stock plugin decides).
func (pl *VolumeBinding) hostNode(cs fwk.CycleState, nodeName string) bool {
	s, err := read(cs)
	if err != nil || !s.binding.IsSuccess() {
		return false
	}
	ni, err := pl.h.SnapshotSharedLister().NodeInfos().Get(nodeName)
	return err != nil || !IsVirtual(ni.Node())
}

// EventsToRegister: what may make a refused pod fit. No hints: a node's
// annotation (the classes its member offers), a claim, a volume or a
// class changing requeues the pod.
func (*VolumeBinding) EventsToRegister(context.Context) ([]fwk.ClusterEventWithHint, error) {
	return []fwk.ClusterEventWithHint{
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.UpdateNodeLabel | fwk.UpdateNodeAnnotation}},
		{Event: fwk.ClusterEvent{Resource: fwk.PersistentVolumeClaim, ActionType: fwk.Add | fwk.Update}},
		{Event: fwk.ClusterEvent{Resource: fwk.PersistentVolume, ActionType: fwk.Add | fwk.Update}},
		{Event: fwk.ClusterEvent{Resource: fwk.StorageClass, ActionType: fwk.Add | fwk.Update}},
		{Event: fwk.ClusterEvent{Resource: fwk.CSINode, ActionType: fwk.Add | fwk.Update}},
		{Event: fwk.ClusterEvent{Resource: fwk.CSIStorageCapacity, ActionType: fwk.Add | fwk.Update}},
	}, nil
}

func read(cs fwk.CycleState) (*state, error) {
	d, err := cs.Read(stateKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	s, ok := d.(*state)
	if !ok {
		return nil, fmt.Errorf("%s: state of type %T", Name, d)
	}
	return s, nil
}

// podClaims reads every claim of the pod (ephemeral volumes' too) from
// the host's caches.
func (pl *VolumeBinding) podClaims(pod *corev1.Pod) ([]Claim, error) {
	var out []Claim
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		var name string
		switch {
		case v.PersistentVolumeClaim != nil:
			name = v.PersistentVolumeClaim.ClaimName
		case v.Ephemeral != nil:
			name = ephemeral.VolumeClaimName(pod, v)
		default:
			continue
		}
		c := Claim{Name: pod.Namespace + "/" + name}
		pvc, err := pl.claims.PersistentVolumeClaims(pod.Namespace).Get(name)
		switch {
		case apierrors.IsNotFound(err):
			c.Missing = true
		case err != nil:
			return nil, fmt.Errorf("claim %s: %w", c.Name, err)
		default:
			c.VolumeName = pvc.Spec.VolumeName
			if pvc.Spec.StorageClassName != nil {
				c.Class = *pvc.Spec.StorageClassName
			}
			if c.VolumeName != "" {
				if pv, err := pl.volumes.Get(c.VolumeName); err == nil {
					c.Volume = pv
				}
			}
		}
		out = append(out, c)
	}
	return out, nil
}
