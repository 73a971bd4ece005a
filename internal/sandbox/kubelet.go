package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"kosmos.io/kosmos/internal/globalip"
	"kosmos.io/kosmos/tree"
)

// kubelet plays, for one cluster, the kubelets of its simulated machines
// and the cluster's default scheduler: a pod that wants the default
// scheduler is bound to the machine with the fewest pods; a pod on a
// machine runs at once (an address from the machine's pod CIDR, every
// container ready); a pod being deleted is finished off. Pods on other
// nodes (the host's virtual nodes) are not its business.
type kubelet struct {
	cluster string
	cs      kubernetes.Interface
	log     *slog.Logger

	// netns is the network namespace of a machine's pod (nil: no data
	// plane); set before run.
	netns func(node string) string

	mu     sync.Mutex
	nodes  map[string]*machine // by node name
	lister corelisters.PodLister
}

// machine is one simulated node's bookkeeping.
type machine struct {
	hostIP string
	cidr   netip.Prefix
	next   int            // next host offset to hand out
	pods   map[string]int // "ns/name" → host offset
	load   int            // pods bound or running here, for spreading
}

func newKubelet(cluster string, cs kubernetes.Interface, nodes []corev1.Node, log *slog.Logger) *kubelet {
	k := &kubelet{cluster: cluster, cs: cs, log: log, nodes: map[string]*machine{}}
	for _, n := range nodes {
		m := &machine{next: 2, pods: map[string]int{}}
		if len(n.Status.Addresses) > 0 {
			m.hostIP = n.Status.Addresses[0].Address
		}
		if n.Spec.PodCIDR != "" {
			m.cidr, _ = netip.ParsePrefix(n.Spec.PodCIDR)
		}
		k.nodes[n.Name] = m
	}
	return k
}

// run works until ctx ends.
func (k *kubelet) run(ctx context.Context) {
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	f := informers.NewSharedInformerFactory(k.cs, 0)
	inf := f.Core().V1().Pods().Informer()
	lister := f.Core().V1().Pods().Lister()
	k.mu.Lock()
	k.lister = lister
	k.mu.Unlock()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			q.Add(key)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, n any) { enqueue(n) }, DeleteFunc: enqueue})
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return
	}
	go k.heartbeat(ctx)
	go func() { <-ctx.Done(); q.ShutDown() }()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				key, quit := q.Get()
				if quit {
					return
				}
				ns, name, _ := cache.SplitMetaNamespaceKey(key)
				p, err := lister.Pods(ns).Get(name)
				if apierrors.IsNotFound(err) {
					k.forget(key)
					err = nil
				} else if err == nil {
					err = k.sync(ctx, p)
				}
				if err != nil && ctx.Err() == nil {
					k.log.Debug("simulated kubelet", "cluster", k.cluster, "pod", key, "err", err)
					q.AddRateLimited(key)
				} else {
					q.Forget(key)
				}
				q.Done(key)
			}
		})
	}
	wg.Wait()
	f.Shutdown()
}

// heartbeat renews each machine's Lease in kube-node-lease every 10s, as
// kubelets do, so the node lifecycle controller sees them alive, and posts
// the node's status again whenever it does not say Ready (as a kubelet
// does when its status was changed under it, by the node lifecycle
// controller during an outage of the control plane): nodes recover.
func (k *kubelet) heartbeat(ctx context.Context) {
	for {
		for name := range k.nodes {
			if err := tree.RenewNodeLease(ctx, k.cs, name, nil, nil); err != nil && ctx.Err() == nil {
				k.log.Debug("simulated kubelet lease", "cluster", k.cluster, "node", name, "err", err)
			}
			if err := k.postReady(ctx, name); err != nil && ctx.Err() == nil {
				k.log.Debug("simulated kubelet node status", "cluster", k.cluster, "node", name, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
	}
}

// postReady sets the node's Ready condition back to True when it is not.
func (k *kubelet) postReady(ctx context.Context, name string) error {
	n, err := k.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	now := metav1.Now()
	for i, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status == corev1.ConditionTrue {
			return nil
		}
		n.Status.Conditions[i] = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "simulated kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}
		_, err = k.cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	}
	return nil
}

func (k *kubelet) sync(ctx context.Context, p *corev1.Pod) error {
	pods := k.cs.CoreV1().Pods(p.Namespace)
	if p.Spec.NodeName == "" {
		if p.Spec.SchedulerName != "" && p.Spec.SchedulerName != corev1.DefaultSchedulerName {
			return nil // another scheduler's pod
		}
		node := k.leastLoaded()
		if node == "" {
			return errors.New("no simulated machine")
		}
		return pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, UID: p.UID},
			Target: corev1.ObjectReference{Kind: "Node", Name: node}}, metav1.CreateOptions{})
	}
	k.mu.Lock()
	m, ours := k.nodes[p.Spec.NodeName]
	k.mu.Unlock()
	if !ours {
		return nil
	}
	if p.DeletionTimestamp != nil {
		zero := int64(0)
		err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &p.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	}
	if p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil
	}
	up := p.DeepCopy()
	now := metav1.Now()
	ip := k.address(m, p.Namespace+"/"+p.Name)
	up.Status.Phase, up.Status.HostIP, up.Status.StartTime = corev1.PodRunning, m.hostIP, &now
	up.Status.HostIPs = []corev1.HostIP{{IP: m.hostIP}}
	if ip != "" {
		up.Status.PodIP, up.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	}
	up.Status.Conditions = nil
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		up.Status.Conditions = append(up.Status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	up.Status.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		up.Status.ContainerStatuses = append(up.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true,
			Started: ptr(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
	}
	_, err := pods.UpdateStatus(ctx, up, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("run pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// leastLoaded is the simulated machine with the fewest pods (by name on a
// tie); it counts the pod about to be bound there.
func (k *kubelet) leastLoaded() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	best := ""
	for name, m := range k.nodes {
		if b := k.nodes[best]; best == "" || m.load < b.load || (m.load == b.load && name < best) {
			best = name
		}
	}
	if best != "" {
		k.nodes[best].load++
	}
	return best
}

// address hands the pod an address of the machine's pod CIDR (the same
// one again if it asks twice).
func (k *kubelet) address(m *machine, key string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !m.cidr.IsValid() {
		return ""
	}
	off, ok := m.pods[key]
	if !ok {
		off = m.next
		m.next++
		m.pods[key] = off
	}
	var lo netip.Addr
	if m.cidr.Addr().Is4() {
		lo = netip.AddrFrom4([4]byte{byte(off >> 24), byte(off >> 16), byte(off >> 8), byte(off)})
	} else {
		var b [16]byte
		b[12], b[13], b[14], b[15] = byte(off>>24), byte(off>>16), byte(off>>8), byte(off)
		lo = netip.AddrFrom16(b)
	}
	return globalip.Splice(m.cidr.Addr(), lo, m.cidr.Bits()).String()
}

// forget drops a deleted pod's address.
func (k *kubelet) forget(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, m := range k.nodes {
		if _, ok := m.pods[key]; ok {
			delete(m.pods, key)
			m.load = max(0, m.load-1)
		}
	}
}
