package scheduler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
	fwk "k8s.io/kube-scheduler/framework"

	"kosmos.io/kosmos/scheduler/split"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Labels, taint and annotation of a virtual node (the contract with the
// tree, defined in v1alpha1).
const (
	LabelCluster            = v1alpha1.LabelCluster
	TaintLeaf               = v1alpha1.TaintLeaf
	AnnotationFreeResources = v1alpha1.AnnotationFreeResources
)

var policyGVR = v1alpha1.GroupVersion.WithResource("distributionpolicies")

// policy is one DistributionPolicy, parsed once.
type policy struct {
	name     string
	ns       string
	selector labels.Selector
	owner    *v1alpha1.OwnerSelector
	split    split.Policy
	host     string
	required bool
}

// policies follows the DistributionPolicy objects of the host and matches
// pods to them. One is shared by the plugins of a scheduler.
type policies struct {
	mu     sync.RWMutex
	byName map[string]*policy
	rs     appslisters.ReplicaSetLister
	ss     appslisters.StatefulSetLister
}

var (
	storesMu sync.Mutex
	stores   = map[fwk.Handle]*policies{}
)

// policiesFor returns the store of this scheduler, starting it (and
// waiting for its first list) on first use.
func policiesFor(ctx context.Context, h fwk.Handle) (*policies, error) {
	storesMu.Lock()
	defer storesMu.Unlock()
	if p, ok := stores[h]; ok {
		return p, nil
	}
	dc, err := dynamic.NewForConfig(h.KubeConfig())
	if err != nil {
		return nil, err
	}
	p := &policies{byName: map[string]*policy{}}
	p.rs = h.SharedInformerFactory().Apps().V1().ReplicaSets().Lister()
	p.ss = h.SharedInformerFactory().Apps().V1().StatefulSets().Lister()
	f := dynamicinformer.NewDynamicSharedInformerFactory(dc, 0)
	inf := f.ForResource(policyGVR).Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.set(o) },
		UpdateFunc: func(_, o any) { p.set(o) },
		DeleteFunc: func(o any) { p.remove(o) },
	}); err != nil {
		return nil, err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("distribution policies: the informer did not sync")
	}
	stores[h] = p
	return p, nil
}

func (p *policies) set(o any) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	var dp v1alpha1.DistributionPolicy
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &dp); err != nil {
		return
	}
	sel := labels.Everything()
	if dp.Spec.Selector.LabelSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(dp.Spec.Selector.LabelSelector)
		if err != nil {
			return
		}
		sel = s
	}
	pol := &policy{
		name: dp.Name, ns: dp.Spec.Selector.Namespace, selector: sel, owner: dp.Spec.Selector.Owner,
		split: split.FromObject(&dp), host: dp.Spec.HostCluster,
		required: dp.Spec.Placement.Mode != v1alpha1.PlacementPreferred,
	}
	p.mu.Lock()
	p.byName[dp.Name] = pol
	p.mu.Unlock()
}

func (p *policies) remove(o any) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	if u, ok := o.(*unstructured.Unstructured); ok {
		p.mu.Lock()
		delete(p.byName, u.GetName())
		p.mu.Unlock()
	}
}

// match returns the policy governing the pod, or nil. When several match,
// the first by name wins (documented; the validator keeps them apart).
func (p *policies) match(pod *corev1.Pod) *policy {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var names []string
	for n, pol := range p.byName {
		if pol.matches(pod, p) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return p.byName[names[0]]
}

func (pol *policy) matches(pod *corev1.Pod, p *policies) bool {
	if pol.ns != "" && pol.ns != pod.Namespace {
		return false
	}
	if !pol.selector.Matches(labels.Set(pod.Labels)) {
		return false
	}
	if pol.owner == nil {
		return true
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return false
	}
	kind, name := ref.Kind, ref.Name
	if pol.owner.Kind == "Deployment" && ref.Kind == "ReplicaSet" {
		rs, err := p.rs.ReplicaSets(pod.Namespace).Get(ref.Name)
		if err != nil {
			return false
		}
		d := metav1.GetControllerOf(rs)
		if d == nil {
			return false
		}
		kind, name = d.Kind, d.Name
	}
	return strings.EqualFold(kind, pol.owner.Kind) && (pol.owner.Name == "" || pol.owner.Name == name)
}

// sendsToMembers says whether the policy may place pods on member clusters
// (so its pods tolerate the virtual-node taint).
func (pol *policy) sendsToMembers() bool {
	return slices.ContainsFunc(pol.split.Targets, func(t v1alpha1.ClusterPlacement) bool { return t.Name != pol.host })
}

// workload identifies the replicas placed together: the pod's controller,
// or the policy itself for pods without one. total is the replica count the
// controller wants, or 0 when unknown.
func (p *policies) workload(pod *corev1.Pod) (key string, total int) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return "", 0
	}
	key = string(ref.UID)
	switch ref.Kind {
	case "ReplicaSet":
		if rs, err := p.rs.ReplicaSets(pod.Namespace).Get(ref.Name); err == nil && rs.Spec.Replicas != nil {
			total = int(*rs.Spec.Replicas)
		}
	case "StatefulSet":
		if ss, err := p.ss.StatefulSets(pod.Namespace).Get(ref.Name); err == nil && ss.Spec.Replicas != nil {
			total = int(*ss.Spec.Replicas)
		}
	}
	return key, total
}

// clusterOf is the cluster a node belongs to: a virtual node's label, else
// the host.
func clusterOf(n *corev1.Node, host string) string {
	if c, ok := n.Labels[LabelCluster]; ok {
		return c
	}
	return host
}
