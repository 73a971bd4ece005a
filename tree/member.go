package tree

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree/translate"
)

// memberSync is one member cluster: its clients, informers, queue and
// workers. It lives from the first pass that reaches the member until the
// cluster leaves or its kubeconfig Secret changes.
//
// The pod sync (podsync.go) reaches pods only through pods and host; the
// dependency copies (deps.go) and volumes (storage.go) use the clientsets
// and listers below directly.
type memberSync struct {
	name    string
	owner   string // LabelOwner of what it creates (OwnerID)
	version string // of the kubeconfig Secret
	ctl     *Controller
	cs      kubernetes.Interface
	config  *rest.Config

	// pods and host are the pod sync's seams to the member and the host.
	pods MemberPods
	host HostPods

	cluster atomic.Pointer[v1alpha1.Cluster]
	net     atomic.Pointer[translate.MemberNetwork] // pod CIDRs and GlobalCIDRs

	all, own   informers.SharedInformerFactory // everything; the tree's own copies
	podLister  corelisters.PodLister
	nodes      corelisters.NodeLister
	namespaces corelisters.NamespaceLister
	configMaps corelisters.ConfigMapLister // the tree's copies only
	secrets    corelisters.SecretLister    // the tree's copies only
	accounts   corelisters.ServiceAccountLister
	claims     corelisters.PersistentVolumeClaimLister
	daemonSets appslisters.DaemonSetLister // the tree's own
	synced     []cache.InformerSynced

	// The tree's DaemonSets, watched apart (memberdaemonsets.go): started
	// only once the member allows it, never in synced.
	dsf        informers.SharedInformerFactory
	dsInformer cache.SharedIndexInformer
	dsStarted  atomic.Bool
	dsChecked  atomic.Int64 // unix nanos of the last rights check
	dsDenied   atomic.Value // string: what the member denies
	runCtx     context.Context
	ready      atomic.Bool

	queue  workqueue.TypedRateLimitingInterface[string]
	lanes  *laneQueue // under queue: member pod changes go up (podqueue.go)
	cancel context.CancelFunc
	done   chan struct{}

	// connected is when the sync started; lastSeen when the member's API
	// server last answered (unix nanos).
	connected time.Time
	lastSeen  atomic.Int64
	// down is whether the last probe failed.
	down atomic.Bool

	rtMu      sync.Mutex        // guards upgradeRT
	upgradeRT http.RoundTripper // to the member over HTTP/1.1 (kubelet endpoint)
}

func newMemberSync(ctl *Controller, cl *v1alpha1.Cluster, cfg *rest.Config, version string) (*memberSync, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = ctl.QPS, int(2*ctl.QPS)
	// Watches last: the informers' client has no timeout (a timeout would cut
	// every watch and relist); plain requests are bounded, so a hung member
	// fails fast.
	cfg.Timeout = 0
	watchCS, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for member %s: %w", cl.Name, err)
	}
	cfg.Timeout = 30 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for member %s: %w", cl.Name, err)
	}
	m := &memberSync{name: cl.Name, owner: translate.OwnerID(ctl.hostID, cl.Name), version: version, ctl: ctl, cs: cs, config: cfg,
		connected: time.Now(), host: hostPodClient{ctl}}
	m.setCluster(cl)
	m.lanes = newLaneQueue()
	m.queue = newPodQueue("tree-"+cl.Name, m.lanes)
	m.informers(watchCS)
	m.pods = memberPodClient{cs: cs, lister: m.podLister}
	return m, nil
}

// setCluster takes the latest Cluster object (mode, endpoint, pod CIDRs,
// mappings).
func (m *memberSync) setCluster(cl *v1alpha1.Cluster) {
	m.cluster.Store(cl.DeepCopy())
	net, err := translate.ParseMemberNetwork(&cl.Spec)
	if err != nil {
		m.ctl.Log.Warn("cluster pod and global CIDRs", "cluster", cl.Name, "err", err)
	}
	m.net.Store(&net)
}

// informers makes the member's informers and listers (started by start):
// all nodes, namespaces and pods, and the tree's own copies by label. A
// change of a pod the tree owns queues it; a change of a claim copy
// queues the claim.
func (m *memberSync) informers(cs kubernetes.Interface) {
	m.all = informers.NewSharedInformerFactory(cs, 0)
	m.own = informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = m.ownSelector().String()
	}))
	all, own := m.all.Core().V1(), m.own.Core().V1()
	m.podLister, m.nodes, m.namespaces = all.Pods().Lister(), all.Nodes().Lister(), all.Namespaces().Lister()
	m.configMaps, m.secrets = own.ConfigMaps().Lister(), own.Secrets().Lister()
	m.accounts, m.claims = own.ServiceAccounts().Lister(), own.PersistentVolumeClaims().Lister()
	m.dsf = informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = m.ownSelector().String()
	}))
	m.dsInformer, m.daemonSets = m.dsf.Apps().V1().DaemonSets().Informer(), m.dsf.Apps().V1().DaemonSets().Lister()
	m.dsDenied.Store("")
	m.watchStorageClasses()
	onPod := func(obj any) {
		if p, ok := podOf(obj); ok && m.isOwn(p.Labels) {
			m.seen()
			m.addUp(p.Namespace + "/" + p.Name)
		}
	}
	_, _ = all.Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onPod, UpdateFunc: func(_, n any) { onPod(n) }, DeleteFunc: onPod,
	})
	onClaim := func(obj any) {
		if c, ok := unwrap(obj).(*corev1.PersistentVolumeClaim); ok {
			m.queue.Add(keyClaim + c.Namespace + "/" + c.Name)
		}
	}
	_, _ = own.PersistentVolumeClaims().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onClaim, UpdateFunc: func(_, n any) { onClaim(n) },
	})
	m.synced = []cache.InformerSynced{
		all.Pods().Informer().HasSynced, all.Nodes().Informer().HasSynced, all.Namespaces().Informer().HasSynced,
		own.ConfigMaps().Informer().HasSynced, own.Secrets().Informer().HasSynced,
		own.ServiceAccounts().Informer().HasSynced, own.PersistentVolumeClaims().Informer().HasSynced,
	}
}

// start runs the informers and, once their caches are filled, the workers.
func (m *memberSync) start(parent context.Context, workers int) {
	ctx, cancel := context.WithCancel(parent)
	m.cancel, m.done, m.runCtx = cancel, make(chan struct{}), ctx
	m.all.Start(ctx.Done())
	m.own.Start(ctx.Done())
	go m.run(ctx, workers)
}

// run waits for the caches, compares every pod once, and runs the workers
// until ctx ends.
func (m *memberSync) run(ctx context.Context, workers int) {
	defer close(m.done)
	defer m.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), m.synced...) {
		return
	}
	m.seen()
	m.ready.Store(true)
	m.ctl.Log.Info("member caches synced", "cluster", m.name)
	m.sweep() // restart or outage: compare everything once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for m.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	m.queue.ShutDown()
	wg.Wait()
	m.all.Shutdown()
	m.own.Shutdown()
	m.dsf.Shutdown()
}

// stop ends the member's informers and workers and waits for them.
func (m *memberSync) stop() {
	if m.cancel != nil {
		m.cancel()
		<-m.done
	}
}

func (m *memberSync) seen() { m.lastSeen.Store(time.Now().UnixNano()) }

// sweep queues every pod the sync may need to act on: host pods bound to
// this member's virtual nodes and member pods the tree created (orphans
// of host pods deleted meanwhile among them).
func (m *memberSync) sweep() {
	for _, p := range m.ctl.hostPodsOf(m.name) {
		m.addDown(p.Namespace + "/" + p.Name)
	}
	own, _ := m.podLister.List(m.ownSelector())
	for _, p := range own {
		m.queue.Add(p.Namespace + "/" + p.Name)
	}
}

// ownSelector selects what this member sync created.
func (m *memberSync) ownSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy, translate.LabelOwner: m.owner})
}

// isOwn tells whether an object with these labels is this sync's.
func (m *memberSync) isOwn(l map[string]string) bool {
	return l[LabelManagedBy] == ManagedBy && l[translate.LabelOwner] == m.owner
}

func (m *memberSync) processNext(ctx context.Context) bool {
	key, quit := m.queue.Get()
	if quit {
		return false
	}
	defer m.queue.Done(key)
	start := time.Now()
	var err error
	switch {
	case strings.HasPrefix(key, keyConfigMap), strings.HasPrefix(key, keySecret):
		err = m.reconcileCopy(ctx, key)
	case strings.HasPrefix(key, keyClaim):
		err = m.reconcileClaim(ctx, key)
	default:
		err = m.reconcilePod(ctx, key)
	}
	m.ctl.metrics.observe(m.name, start, err)
	switch {
	case err == nil:
		m.queue.Forget(key)
	case errors.Is(err, errRequeue), apierrors.IsConflict(err), apierrors.IsAlreadyExists(err), apierrors.IsNotFound(err):
		m.queue.AddRateLimited(key) // the cache is behind: look again shortly
	default:
		if ctx.Err() == nil {
			m.ctl.Log.Warn("pod sync", "cluster", m.name, "pod", key, "err", err)
		}
		m.queue.AddRateLimited(key)
	}
	return true
}

// errNotSynced says a member's caches are still filling: its nodes stay
// as they are, and it is no failure while within the grace period.
var errNotSynced = translate.ErrNotSynced

// errRequeue asks for another look once the caches have caught up.
var errRequeue = errors.New("waiting for the member to catch up")

// onlyWaiting tells an error that is errRequeue and nothing else (every
// part of a joined one is): the work waits for a cache, which is no
// failure to warn anyone of.
func onlyWaiting(err error) bool {
	switch e := err.(type) {
	case nil:
		return false
	case interface{ Unwrap() []error }:
		waits := 0
		for _, p := range e.Unwrap() {
			if p == nil {
				continue
			}
			if !onlyWaiting(p) {
				return false
			}
			waits++
		}
		return waits > 0
	case interface{ Unwrap() error }:
		return onlyWaiting(e.Unwrap())
	}
	return err == errRequeue
}

// observe returns what the virtual-node computation reads, from the caches.
func (m *memberSync) observe() (translate.Member, error) {
	if !m.ready.Load() {
		return translate.Member{}, errNotSynced
	}
	nodes, err := m.nodes.List(labels.Everything())
	if err != nil {
		return translate.Member{}, err
	}
	pods, err := m.podLister.List(labels.Everything())
	if err != nil {
		return translate.Member{}, err
	}
	out := translate.Member{Nodes: make([]corev1.Node, len(nodes)), Pods: make([]corev1.Pod, len(pods))}
	for i, n := range nodes {
		out.Nodes[i] = *n
	}
	for i, p := range pods {
		out.Pods[i] = *p
	}
	return out, nil
}

// probe asks the member's API server whether it is ready.
func (m *memberSync) probe(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := m.cs.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	if err == nil {
		m.seen()
	}
	return err
}

// upgradeTransport reaches the member's API server over HTTP/1.1, which
// streaming upgrades (SPDY, WebSocket) need; made once, then shared.
func (m *memberSync) upgradeTransport() (http.RoundTripper, error) {
	m.rtMu.Lock()
	defer m.rtMu.Unlock()
	if m.upgradeRT == nil {
		cfg := rest.CopyConfig(m.config)
		cfg.NextProtos = []string{"http/1.1"}
		rt, err := rest.TransportFor(cfg)
		if err != nil {
			return nil, err
		}
		m.upgradeRT = rt
	}
	return m.upgradeRT, nil
}

func podOf(obj any) (*corev1.Pod, bool) {
	p, ok := unwrap(obj).(*corev1.Pod)
	return p, ok
}

// unwrap is an informer event's object: the last known state of one whose
// deletion was missed, itself otherwise.
func unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}
