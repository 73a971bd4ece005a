package tree

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/kubeconfig"
	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree/translate"
)

// FieldManager is the tree's identity in managed fields.
const FieldManager = "kosmos-tree"

// Marks the rest of the repository reads, defined by package translate
// (the tree's pure core) and v1alpha1.
const (
	// LabelManagedBy with ManagedBy marks what the tree owns: virtual
	// nodes in the host, pods and dependency copies in members. Only such
	// objects are ever deleted.
	LabelManagedBy = translate.LabelManagedBy
	ManagedBy      = translate.ManagedBy
	// LabelCluster names, on a virtual node, the member cluster behind it.
	LabelCluster = translate.LabelCluster
	// TaintLeaf is on every virtual node; pods for members tolerate it.
	TaintLeaf = translate.TaintLeaf
	// NodeLeaseNamespace holds the virtual nodes' heartbeats.
	NodeLeaseNamespace = corev1.NamespaceNodeLease
	indexByNode        = "node"
)

// Controller keeps the host's virtual nodes matching the Cluster objects
// the reconciler writes and what each member's API server shows, and syncs
// the pods bound to them: down to the member with their dependencies,
// status back up.
type Controller struct {
	// Host is a client of the host cluster (Cluster objects, Secrets, nodes).
	Host client.Client
	// Config reaches the host too (informers, tokens, events).
	Config *rest.Config
	// Namespace of kubeconfig Secrets that name none.
	Namespace string
	// Kubeconfig loosens what a kubeconfig Secret may hold (default: inline
	// data only, TLS verified).
	Kubeconfig kubeconfig.Options
	// Interval between passes over virtual nodes, leases and copies
	// (default 10s); pods are synced as they change, not by the pass.
	Interval time.Duration
	// Grace is how long a member may not answer before its virtual nodes
	// go NotReady (default 40s, the host's own node-monitor grace).
	Grace time.Duration
	// Workers sync pods in parallel per member (default 16).
	Workers int
	// QPS towards each cluster (default 100; burst twice that).
	QPS float32
	// NodeIP and KubeletPort are the kubelet endpoint the virtual nodes
	// advertise (logs, exec); unset, none is advertised.
	NodeIP      string
	KubeletPort int32
	// HostDNS is where copies resolve names (hostservices.go in
	// translate): "" finds the host's cluster DNS (the ClusterIP of
	// kube-system/kube-dns), an IP names it, "off" leaves copies on the
	// member's DNS.
	HostDNS string
	// ClusterDomain is the host's cluster domain (default cluster.local).
	ClusterDomain string
	Log           *slog.Logger
	// OnPass, when set, receives every pass's error (tests, readiness).
	OnPass func(error)

	hostCS         kubernetes.Interface
	hostPods       cache.Indexer
	hostPodLister  corelisters.PodLister
	hostNodes      corelisters.NodeLister
	hostConfigMaps corelisters.ConfigMapLister
	hostSecrets    corelisters.SecretLister
	hostClaims     corelisters.PersistentVolumeClaimLister
	hostPVs        corelisters.PersistentVolumeLister // the tree's reflections
	hostDaemonSets appslisters.DaemonSetLister
	hostServices   corelisters.ServiceLister
	hostNamespaces corelisters.NamespaceLister
	hostCA         []byte
	hostID         string // the host's kube-system namespace UID
	recorder       record.EventRecorder
	metrics        *metrics

	// dsAdmission is the last pass's verdict on the host DaemonSets
	// (daemonsetadmit.go).
	dsAdmission atomic.Pointer[daemonSetAdmission]

	mu      sync.Mutex
	members map[string]*memberSync // by cluster name
	// hostReady is set once the host's clients and caches exist.
	hostReady atomic.Bool
}

func (c *Controller) defaults() {
	c.Interval = cmp.Or(c.Interval, 10*time.Second)
	c.Grace = cmp.Or(c.Grace, 40*time.Second)
	c.Workers = cmp.Or(c.Workers, 16)
	c.QPS = cmp.Or(c.QPS, 100)
	c.ClusterDomain = cmp.Or(c.ClusterDomain, "cluster.local")
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.metrics == nil {
		c.metrics = newMetrics()
	}
}

// Run starts the host informers, then passes until ctx ends; members'
// pods are synced by their own workers in between.
func (c *Controller) Run(ctx context.Context) error {
	c.defaults()
	if c.HostDNS != "" && c.HostDNS != "off" && net.ParseIP(c.HostDNS) == nil {
		return fmt.Errorf("tree: host DNS %q is neither an IP address nor \"off\"", c.HostDNS)
	}
	if err := c.startHost(ctx); err != nil {
		return err
	}
	defer c.stopMembers()
	for {
		err := c.Pass(ctx)
		if err != nil && ctx.Err() == nil {
			c.Log.Error("tree pass", "err", err)
		}
		if c.OnPass != nil {
			c.OnPass(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.Interval):
		}
	}
}

// startHost builds the host's clients and informers and waits for the
// caches to fill.
func (c *Controller) startHost(ctx context.Context) error {
	if c.Config == nil {
		return errors.New("tree: no host config")
	}
	if err := c.hostClients(ctx); err != nil {
		return err
	}
	factories, err := c.hostInformers()
	if err != nil {
		return err
	}
	for _, f := range factories {
		f.Start(ctx.Done())
	}
	for _, f := range factories {
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return fmt.Errorf("host cache of %v did not sync", typ)
			}
		}
	}
	c.hostReady.Store(true)
	return nil
}

// hostClients makes the host's clientset and event recorder, and reads
// the host's identity (kube-system's UID) and CA.
func (c *Controller) hostClients(ctx context.Context) error {
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = c.QPS, int(2*c.QPS)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("host client: %w", err)
	}
	c.hostCS = cs
	ks, err := cs.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("host identity (namespace kube-system): %w", err)
	}
	c.hostID = string(ks.UID)
	c.hostCA = cfg.CAData
	if len(c.hostCA) == 0 && cfg.CAFile != "" {
		if c.hostCA, err = os.ReadFile(cfg.CAFile); err != nil {
			return fmt.Errorf("host CA: %w", err)
		}
	}
	bc := record.NewBroadcaster(record.WithContext(ctx))
	bc.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	c.recorder = bc.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kosmos-tree"})
	return nil
}

// hostInformers makes the host's informers (pods bound to some node, the
// tree's virtual nodes and volumes, ConfigMaps, Secrets and claims) and
// routes their changes to the members' queues: a pod to the member behind
// its node, a ConfigMap or Secret to every member holding a copy.
func (c *Controller) hostInformers() ([]informers.SharedInformerFactory, error) {
	all := informers.NewSharedInformerFactory(c.hostCS, 0)
	bound := informers.NewSharedInformerFactoryWithOptions(c.hostCS, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "spec.nodeName!="
	}))
	own := informers.NewSharedInformerFactoryWithOptions(c.hostCS, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = LabelManagedBy + "=" + ManagedBy
	}))
	podInf := bound.Core().V1().Pods().Informer()
	if err := podInf.AddIndexers(cache.Indexers{indexByNode: func(obj any) ([]string, error) {
		return []string{obj.(*corev1.Pod).Spec.NodeName}, nil
	}}); err != nil {
		return nil, err
	}
	c.hostPods, c.hostPodLister = podInf.GetIndexer(), bound.Core().V1().Pods().Lister()
	c.hostNodes, c.hostPVs = own.Core().V1().Nodes().Lister(), own.Core().V1().PersistentVolumes().Lister()
	c.hostConfigMaps, c.hostSecrets = all.Core().V1().ConfigMaps().Lister(), all.Core().V1().Secrets().Lister()
	c.hostClaims = all.Core().V1().PersistentVolumeClaims().Lister()
	c.hostDaemonSets = all.Apps().V1().DaemonSets().Lister()
	c.hostServices = all.Core().V1().Services().Lister()
	c.hostNamespaces = all.Core().V1().Namespaces().Lister()
	_, _ = podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: c.onHostPod, UpdateFunc: func(_, n any) { c.onHostPod(n) }, DeleteFunc: c.onHostPod})
	// nodepods.go, claimresize.go
	_, _ = own.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: c.onVirtualNode})
	_, _ = all.Core().V1().PersistentVolumeClaims().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, n any) { c.onHostClaim(n) }})
	for prefix, inf := range map[string]cache.SharedIndexInformer{
		keyConfigMap: all.Core().V1().ConfigMaps().Informer(), keySecret: all.Core().V1().Secrets().Informer(),
	} {
		f := func(obj any) { c.onHostSource(prefix, obj) }
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, n any) { f(n) }, DeleteFunc: f})
	}
	return []informers.SharedInformerFactory{all, bound, own}, nil
}

// onHostPod queues a host pod with the member behind its node.
func (c *Controller) onHostPod(obj any) {
	if p, ok := podOf(obj); ok {
		if m := c.member(c.clusterOfNode(p.Spec.NodeName)); m != nil {
			m.addDown(p.Namespace + "/" + p.Name)
		}
	}
}

// onHostSource queues a host ConfigMap or Secret (by its key prefix) with
// every member that holds a copy of it.
func (c *Controller) onHostSource(prefix string, obj any) {
	o, ok := unwrap(obj).(metav1.Object)
	if !ok {
		return
	}
	for _, m := range c.memberList() {
		if m.hasCopy(prefix, o.GetNamespace(), o.GetName()) {
			m.queue.Add(prefix + o.GetNamespace() + "/" + o.GetName())
		}
	}
}

// hasCopy tells whether the member holds the tree's copy of a ConfigMap
// or Secret.
func (m *memberSync) hasCopy(prefix, ns, name string) bool {
	if !m.ready.Load() {
		return false
	}
	var err error
	if prefix == keyConfigMap {
		_, err = m.configMaps.ConfigMaps(ns).Get(name)
	} else {
		_, err = m.secrets.Secrets(ns).Get(name)
	}
	return err == nil
}

// connect returns the member's sync, started on first use and restarted
// when its kubeconfig Secret changes.
func (c *Controller) connect(ctx context.Context, cl *v1alpha1.Cluster) (*memberSync, error) {
	cfg, version, err := kubeconfig.FromSecret(ctx, c.Host, cl.Spec.Kubeconfig, c.Namespace, c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if m := c.member(cl.Name); m != nil {
		if m.version == version {
			m.setCluster(cl)
			return m, nil
		}
		c.dropMember(cl.Name)
	}
	m, err := newMemberSync(c, cl, cfg, version)
	if err != nil {
		return nil, err
	}
	m.seen() // the grace period starts now
	m.start(context.WithoutCancel(ctx), c.Workers)
	c.mu.Lock()
	if c.members == nil {
		c.members = map[string]*memberSync{}
	}
	c.members[cl.Name] = m
	c.mu.Unlock()
	c.Log.Info("member connected", "cluster", cl.Name)
	return m, nil
}

func (c *Controller) member(name string) *memberSync {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[name]
}

func (c *Controller) memberList() []*memberSync {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*memberSync, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, m)
	}
	return out
}

func (c *Controller) dropMember(name string) {
	c.mu.Lock()
	m := c.members[name]
	delete(c.members, name)
	c.mu.Unlock()
	if m != nil {
		m.stop()
		c.metrics.reachable.DeleteLabelValues(name)
		c.metrics.syncs.DeletePartialMatch(map[string]string{"cluster": name})
		c.metrics.seconds.DeletePartialMatch(map[string]string{"cluster": name})
	}
}

func (c *Controller) stopMembers() {
	for _, m := range c.memberList() {
		c.dropMember(m.name)
	}
}

// clusterOfNode is the member behind a virtual node, or "".
func (c *Controller) clusterOfNode(node string) string {
	if node == "" || c.hostNodes == nil {
		return ""
	}
	n, err := c.hostNodes.Get(node)
	if err != nil {
		return ""
	}
	return n.Labels[LabelCluster]
}

// memberNodeOf is the member node a OneToOne virtual node mirrors.
func (c *Controller) memberNodeOf(node string) string {
	n, err := c.hostNodes.Get(node)
	if err != nil {
		return ""
	}
	return n.Labels[translate.LabelMemberNode]
}

// hostPod is the host's pod namespace/name from the cache, or nil.
func (c *Controller) hostPod(ns, name string) *corev1.Pod {
	p, err := c.hostPodLister.Pods(ns).Get(name)
	if err != nil {
		return nil
	}
	return p
}

// hostPodsOf lists the host pods bound to the cluster's virtual nodes.
func (c *Controller) hostPodsOf(cluster string) []*corev1.Pod {
	nodes, _ := c.hostNodes.List(labels.SelectorFromSet(labels.Set{LabelCluster: cluster}))
	var out []*corev1.Pod
	for _, n := range nodes {
		objs, _ := c.hostPods.ByIndex(indexByNode, n.Name)
		for _, o := range objs {
			out = append(out, o.(*corev1.Pod))
		}
	}
	return out
}

func (c *Controller) event(obj *corev1.Pod, typ, reason, msg string) {
	if c.recorder != nil {
		c.recorder.Event(obj, typ, reason, msg)
	}
	c.Log.Info("pod event", "pod", obj.Namespace+"/"+obj.Name, "reason", reason, "message", msg)
}

// hostDNS is the host's cluster DNS as copies reach it (HostDNS), nil
// when off or not found.
func (c *Controller) hostDNS() *translate.HostDNS {
	ip := c.HostDNS
	switch ip {
	case "off":
		return nil
	case "":
		svc, err := c.hostServices.Services(metav1.NamespaceSystem).Get("kube-dns")
		if err != nil || net.ParseIP(svc.Spec.ClusterIP) == nil {
			return nil
		}
		ip = svc.Spec.ClusterIP
	}
	return &translate.HostDNS{Nameserver: ip, ClusterDomain: c.ClusterDomain}
}

// hostServiceLinks is how a copy of a host pod of namespace ns reaches the
// host's Services from a member reaching them as r says: the host DNS (an
// explicit --host-dns address as given), whether it gets the host's
// service-link environment instead of the member's, and that environment
// (translate.HostServices, ServiceEnv).
func (c *Controller) hostServiceLinks(r translate.HostServiceReach, ns string) (*translate.HostDNS, bool, []corev1.EnvVar) {
	svcs, _ := c.hostServices.Services(ns).List(labels.Everything())
	dns, reached, links := translate.HostServices(r, c.hostDNS(), svcs)
	if c.HostDNS != "" && c.HostDNS != "off" {
		dns = c.hostDNS() // the admin's address: reachable as given
	}
	return dns, links, translate.ServiceEnv(ns, reached)
}
