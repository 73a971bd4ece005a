package policies

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
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"kosmos.io/kosmos/schema/v1alpha1"
)

var policyGVR = v1alpha1.GroupVersion.WithResource("distributionpolicies")

// Store follows the DistributionPolicy objects of the host and matches
// pods to them. It is owned by the plugin instance that started it.
type Store struct {
	log klog.Logger
	rs  appslisters.ReplicaSetLister
	ss  appslisters.StatefulSetLister

	mu     sync.RWMutex
	byName map[string]*Policy

	stop    context.CancelFunc
	factory dynamicinformer.DynamicSharedInformerFactory
}

// Start starts a store for the scheduler behind h and waits for its first
// list. It logs with the logger of ctx; it stops when ctx ends or on Close.
func Start(ctx context.Context, h fwk.Handle) (*Store, error) {
	dc, err := dynamic.NewForConfig(h.KubeConfig())
	if err != nil {
		return nil, fmt.Errorf("distribution policies: client: %w", err)
	}
	s := &Store{
		log:    klog.FromContext(ctx),
		rs:     h.SharedInformerFactory().Apps().V1().ReplicaSets().Lister(),
		ss:     h.SharedInformerFactory().Apps().V1().StatefulSets().Lister(),
		byName: map[string]*Policy{},
	}
	ctx, s.stop = context.WithCancel(ctx)
	s.factory = dynamicinformer.NewDynamicSharedInformerFactory(dc, 0)
	inf := s.factory.ForResource(policyGVR).Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.set,
		UpdateFunc: func(_, o any) { s.set(o) },
		DeleteFunc: s.remove,
	}); err != nil {
		s.Close()
		return nil, fmt.Errorf("distribution policies: event handler: %w", err)
	}
	s.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		s.Close()
		return nil, fmt.Errorf("distribution policies: the informer did not sync")
	}
	return s, nil
}

// Close stops the store's informer and waits for it to end.
func (s *Store) Close() {
	if s.stop != nil {
		s.stop()
		s.factory.Shutdown()
	}
}

// set adds or replaces a policy. One that does not parse is logged and
// ignored: the last version that parsed, if any, stays in effect.
func (s *Store) set(o any) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		s.log.Error(nil, "Ignoring a DistributionPolicy event of an unexpected type", "type", fmt.Sprintf("%T", o))
		return
	}
	var dp v1alpha1.DistributionPolicy
	err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &dp)
	if err != nil {
		err = fmt.Errorf("DistributionPolicy %s: %w", u.GetName(), err)
	}
	var pol *Policy
	if err == nil {
		pol, err = Parse(&dp)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		_, kept := s.byName[u.GetName()]
		s.log.Error(err, "Ignoring a DistributionPolicy that does not parse", "policy", u.GetName(), "previousVersionKept", kept)
		return
	}
	s.byName[pol.Name] = pol
}

func (s *Store) remove(o any) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	if u, ok := o.(*unstructured.Unstructured); ok {
		s.mu.Lock()
		delete(s.byName, u.GetName())
		s.mu.Unlock()
	}
}

// Match returns the policy governing the pod, or nil. When several match,
// the first by name wins (documented; the validator keeps them apart).
func (s *Store) Match(pod *corev1.Pod) *Policy {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var names []string
	for n, pol := range s.byName {
		if s.Matches(pol, pod) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return s.byName[names[0]]
}

// Matches says whether pol selects the pod: namespace, labels, and owner
// (a Deployment through its ReplicaSet).
func (s *Store) Matches(pol *Policy, pod *corev1.Pod) bool {
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
		rs, err := s.rs.ReplicaSets(pod.Namespace).Get(ref.Name)
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

// Workload identifies the replicas placed together: the pod's controller,
// or the policy itself for pods without one. total is the replica count the
// controller wants, or 0 when unknown.
func (s *Store) Workload(pod *corev1.Pod) (key string, total int) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return "", 0
	}
	key = string(ref.UID)
	switch ref.Kind {
	case "ReplicaSet":
		if rs, err := s.rs.ReplicaSets(pod.Namespace).Get(ref.Name); err == nil && rs.Spec.Replicas != nil {
			total = int(*rs.Spec.Replicas)
		}
	case "StatefulSet":
		if ss, err := s.ss.StatefulSets(pod.Namespace).Get(ref.Name); err == nil && ss.Spec.Replicas != nil {
			total = int(*ss.Spec.Replicas)
		}
	}
	return key, total
}
