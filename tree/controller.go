package tree

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
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
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/kubeconfig"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// FieldManager is the tree's identity in managed fields; LabelManagedBy
// with ManagedBy marks what it owns: virtual nodes in the host, pods and
// dependency copies in members. Only such objects are ever deleted.
const (
	FieldManager   = "kosmos-tree"
	LabelManagedBy = v1alpha1.LabelManagedBy
	ManagedBy      = v1alpha1.ManagedByTree
	// AnnotationOwnLabels lists the label keys the tree set on a virtual
	// node, so that it removes the ones it no longer wants and no other.
	AnnotationOwnLabels = "kosmos.io/own-labels"
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
	Log         *slog.Logger
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
	hostCA         []byte
	hostID         string // the host's kube-system namespace UID
	recorder       record.EventRecorder
	metrics        *metrics

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

// startHost builds the host's clients and informers: pods bound to some
// node, the tree's virtual nodes, ConfigMaps, Secrets and claims.
func (c *Controller) startHost(ctx context.Context) error {
	if c.Config == nil {
		return errors.New("tree: no host config")
	}
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

	all := informers.NewSharedInformerFactory(cs, 0)
	bound := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "spec.nodeName!="
	}))
	own := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = LabelManagedBy + "=" + ManagedBy
	}))
	podInf := bound.Core().V1().Pods().Informer()
	if err := podInf.AddIndexers(cache.Indexers{indexByNode: func(obj any) ([]string, error) {
		return []string{obj.(*corev1.Pod).Spec.NodeName}, nil
	}}); err != nil {
		return err
	}
	c.hostPods, c.hostPodLister = podInf.GetIndexer(), bound.Core().V1().Pods().Lister()
	c.hostNodes, c.hostPVs = own.Core().V1().Nodes().Lister(), own.Core().V1().PersistentVolumes().Lister()
	c.hostConfigMaps, c.hostSecrets = all.Core().V1().ConfigMaps().Lister(), all.Core().V1().Secrets().Lister()
	c.hostClaims = all.Core().V1().PersistentVolumeClaims().Lister()
	onPod := func(obj any) {
		if p, ok := podOf(obj); ok {
			if m := c.member(c.clusterOfNode(p.Spec.NodeName)); m != nil {
				m.queue.Add(p.Namespace + "/" + p.Name)
			}
		}
	}
	_, _ = podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, n any) { onPod(n) }, DeleteFunc: onPod})
	onSource := func(prefix string) func(any) {
		return func(obj any) {
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
	}
	for prefix, inf := range map[string]cache.SharedIndexInformer{
		keyConfigMap: all.Core().V1().ConfigMaps().Informer(), keySecret: all.Core().V1().Secrets().Informer(),
	} {
		f := onSource(prefix)
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, n any) { f(n) }, DeleteFunc: f})
	}
	all.Start(ctx.Done())
	bound.Start(ctx.Done())
	own.Start(ctx.Done())
	for _, f := range []informers.SharedInformerFactory{all, bound, own} {
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return fmt.Errorf("host cache of %v did not sync", typ)
			}
		}
	}
	c.hostReady.Store(true)
	return nil
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

// Pass brings every virtual node, lease and dependency copy up to date
// once: one member failing does not stop the others (its nodes are left as
// they are until the grace period makes them NotReady).
func (c *Controller) Pass(ctx context.Context) error {
	var clusters v1alpha1.ClusterList
	if err := c.Host.List(ctx, &clusters); err != nil {
		return fmt.Errorf("list Cluster objects: %w", err)
	}
	want := map[string]bool{} // virtual nodes
	keep := map[string]bool{} // clusters whose nodes stay as they are
	live := map[string]bool{} // clusters with a member sync
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	// Clusters in parallel: a member that does not answer delays no other
	// member's leases.
	for i := range clusters.Items {
		cl := &clusters.Items[i]
		if cl.Spec.Tree.Enabled != nil && !*cl.Spec.Tree.Enabled {
			continue
		}
		live[cl.Name] = true
		wg.Go(func() {
			names, err := c.passCluster(ctx, cl)
			serr := c.writeClusterStatus(ctx, cl, err)
			mu.Lock()
			defer mu.Unlock()
			for _, n := range names {
				want[n] = true
			}
			if serr != nil {
				errs = append(errs, fmt.Errorf("cluster %s status: %w", cl.Name, serr))
			}
			if err == nil {
				return
			}
			keep[cl.Name] = true
			if m := c.member(cl.Name); errors.Is(err, errNotSynced) && m != nil && time.Since(m.connected) < c.Grace {
				return // just connected: give it the grace period
			}
			errs = append(errs, fmt.Errorf("cluster %s: %w", cl.Name, err))
		})
	}
	wg.Wait()
	for _, m := range c.memberList() {
		if !live[m.name] {
			c.dropMember(m.name)
		}
	}
	nodes, err := c.hostNodes.List(labels.Everything())
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	c.metrics.nodes.Set(float64(len(want)))
	for _, n := range nodes {
		if want[n.Name] {
			continue
		}
		if keep[n.Labels[LabelCluster]] {
			errs = append(errs, c.markUnreachable(ctx, n))
			continue
		}
		if err := c.hostCS.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", n.Name, err))
			continue
		}
		_ = c.hostCS.CoordinationV1().Leases(NodeLeaseNamespace).Delete(ctx, n.Name, metav1.DeleteOptions{})
		c.Log.Info("virtual node removed", "node", n.Name)
	}
	return errors.Join(errs...)
}

// passCluster connects to one member (or reuses its sync), probes it, and
// writes its virtual nodes, their health and leases; it returns the names
// of the virtual nodes the member wants.
func (c *Controller) passCluster(ctx context.Context, cl *v1alpha1.Cluster) (names []string, err error) {
	m, err := c.connect(ctx, cl)
	if err != nil {
		return nil, err
	}
	probeErr := m.probe(ctx, 5*time.Second)
	reachable := probeErr == nil
	if m.down.Swap(!reachable) && reachable {
		c.Log.Info("member reachable again; comparing every pod", "cluster", cl.Name)
		m.sweep() // host pods deleted during the outage go in the member too
	}
	c.metrics.reachable.WithLabelValues(cl.Name).Set(map[bool]float64{false: 0, true: 1}[reachable])
	mem, err := m.observe()
	if err != nil {
		return nil, errors.Join(err, probeErr)
	}
	cond := c.readyCondition(m, cl, mem, probeErr)
	var errs []error
	for _, n := range VirtualNodes(cl, mem) {
		names = append(names, n.Name)
		nodeCond := cond
		if own := n.Status.Conditions; cond != nil && cond.Status == corev1.ConditionTrue && len(own) > 0 && own[0].Status != corev1.ConditionTrue {
			nodeCond = &own[0] // OneToOne: the member node itself is not Ready
			nodeCond.LastHeartbeatTime, nodeCond.LastTransitionTime = cond.LastHeartbeatTime, cond.LastTransitionTime
		}
		n.Status.Conditions = nil
		if err := c.apply(ctx, n, nodeCond); err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", n.Name, err))
			continue
		}
		if reachable {
			errs = append(errs, c.renewLease(ctx, n.Name))
		}
	}
	if reachable {
		errs = append(errs, m.collect(ctx))
	}
	return names, errors.Join(errs...)
}

// readyCondition is the virtual nodes' Ready condition: True while the
// member answers and has a Ready selected node; False when it has none;
// Unknown once it has not answered for the grace period; while within the
// grace period, nil (the node keeps what it shows).
func (c *Controller) readyCondition(m *memberSync, cl *v1alpha1.Cluster, mem Member, probeErr error) *corev1.NodeCondition {
	now := metav1.Now()
	cond := &corev1.NodeCondition{Type: corev1.NodeReady, LastHeartbeatTime: now, LastTransitionTime: now}
	silent := time.Since(time.Unix(0, m.lastSeen.Load()))
	switch {
	case probeErr != nil && silent < c.Grace:
		return nil
	case probeErr != nil:
		cond.Status, cond.Reason = corev1.ConditionUnknown, "MemberUnreachable"
		cond.Message = fmt.Sprintf("the API server of member cluster %s has not answered for %s", cl.Name, silent.Round(time.Second))
	case len(usable(freeOf(cl, mem))) == 0:
		cond.Status, cond.Reason = corev1.ConditionFalse, "NoReadyMemberNodes"
		cond.Message = fmt.Sprintf("member cluster %s has no Ready, schedulable node the tree selects", cl.Name)
	default:
		cond.Status, cond.Reason = corev1.ConditionTrue, "MemberReady"
		cond.Message = fmt.Sprintf("member cluster %s answers and has Ready nodes", cl.Name)
	}
	return cond
}

// markUnreachable turns a virtual node NotReady (Unknown) once its member
// has not been reachable for the grace period.
func (c *Controller) markUnreachable(ctx context.Context, n *corev1.Node) error {
	m := c.member(n.Labels[LabelCluster])
	if m != nil && time.Since(time.Unix(0, m.lastSeen.Load())) < c.Grace {
		return nil
	}
	for _, cd := range n.Status.Conditions {
		if cd.Type == corev1.NodeReady && cd.Status == corev1.ConditionUnknown {
			return nil
		}
	}
	now := metav1.Now()
	up := n.DeepCopy()
	setCondition(&up.Status, corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "MemberUnreachable",
		Message: "the member cluster cannot be reached", LastHeartbeatTime: now, LastTransitionTime: now})
	_, err := c.hostCS.CoreV1().Nodes().UpdateStatus(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

func setCondition(st *corev1.NodeStatus, cond corev1.NodeCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == cond.Type {
			if st.Conditions[i].Status == cond.Status {
				cond.LastTransitionTime = st.Conditions[i].LastTransitionTime
			}
			st.Conditions[i] = cond
			return
		}
	}
	st.Conditions = append(st.Conditions, cond)
}

// connect returns the member's sync, started on first use and restarted
// when its kubeconfig Secret changes.
func (c *Controller) connect(ctx context.Context, cl *v1alpha1.Cluster) (*memberSync, error) {
	cfg, version, err := kubeconfig.FromSecret(ctx, c.Host, cl.Spec.Kubeconfig, c.Namespace)
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
	m.NotifyPods(func(ns, name string) { m.queue.Add(ns + "/" + name) })
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
	return n.Labels[LabelMemberNode]
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

// apply writes the node (labels, annotations, taints) and its status
// (capacity, allocatable, addresses, the Ready condition cond unless nil)
// when they differ from what the host holds.
func (c *Controller) apply(ctx context.Context, n *corev1.Node, cond *corev1.NodeCondition) error {
	n.Labels[LabelManagedBy] = ManagedBy
	if c.NodeIP != "" {
		// Only the InternalIP: the host's API server prefers a Hostname
		// address, which no resolver knows for a virtual node.
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: c.NodeIP}}
		n.Status.DaemonEndpoints.KubeletEndpoint.Port = c.KubeletPort
	}
	n.Status.NodeInfo = corev1.NodeSystemInfo{KubeletVersion: "kosmos-tree", OperatingSystem: "linux", Architecture: "amd64"}
	nodes := c.hostCS.CoreV1().Nodes()
	have, err := c.hostNodes.Get(n.Name)
	if err != nil { // not in the cache: create, or find it was just created
		if cond != nil {
			n.Status.Conditions = []corev1.NodeCondition{*cond}
		}
		status := n.Status
		created, err := nodes.Create(ctx, n, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			return nil // created by the previous pass; the cache will show it
		}
		if err != nil {
			return err
		}
		created.Status = status
		c.Log.Info("virtual node created", "node", n.Name)
		_, err = nodes.UpdateStatus(ctx, created, metav1.UpdateOptions{FieldManager: FieldManager})
		return err
	}
	up := have.DeepCopy()
	// Labels the tree set before and no longer wants go (a label dropped
	// from the topology); labels others added stay.
	n.Annotations[AnnotationOwnLabels] = strings.Join(slices.Sorted(maps.Keys(n.Labels)), ",")
	var stale []string
	for _, k := range strings.Split(have.Annotations[AnnotationOwnLabels], ",") {
		if _, keep := n.Labels[k]; !keep && k != "" && have.Labels[k] != "" {
			stale = append(stale, k)
		}
	}
	if len(stale) > 0 || !subset(n.Labels, have.Labels) || !subset(n.Annotations, have.Annotations) || !taintsEqual(n.Spec.Taints, ownTaints(have.Spec.Taints)) {
		up.Labels, up.Annotations = merge(up.Labels, n.Labels), merge(up.Annotations, n.Annotations)
		for _, k := range stale {
			delete(up.Labels, k)
		}
		up.Spec.Taints = append(n.Spec.Taints, hostTaints(have.Spec.Taints)...)
		if up, err = nodes.Update(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return err
		}
	}
	changed := !resourcesEqual(up.Status.Allocatable, n.Status.Allocatable) || !slices.Equal(up.Status.Addresses, n.Status.Addresses) ||
		up.Status.DaemonEndpoints != n.Status.DaemonEndpoints || up.Status.NodeInfo.KubeletVersion != n.Status.NodeInfo.KubeletVersion
	if cond != nil && conditionChanged(up.Status.Conditions, cond) {
		setCondition(&up.Status, *cond)
		changed = true
	}
	if !changed {
		return nil
	}
	up.Status.Capacity, up.Status.Allocatable = n.Status.Capacity, n.Status.Allocatable
	up.Status.Addresses, up.Status.DaemonEndpoints, up.Status.NodeInfo = n.Status.Addresses, n.Status.DaemonEndpoints, n.Status.NodeInfo
	_, err = nodes.UpdateStatus(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

func conditionChanged(have []corev1.NodeCondition, cond *corev1.NodeCondition) bool {
	for _, h := range have {
		if h.Type == cond.Type {
			return h.Status != cond.Status || h.Reason != cond.Reason
		}
	}
	return true
}

func resourcesEqual(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, q := range a {
		if o, ok := b[k]; !ok || o.Cmp(q) != 0 {
			return false
		}
	}
	return true
}

func taintsEqual(a, b []corev1.Taint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].MatchTaint(&b[i]) || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}

// hostTaints are the taints the host's node lifecycle adds itself (not
// ready, unreachable); the tree keeps them and never writes its own.
func hostTaints(have []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range have {
		if strings.HasPrefix(t.Key, "node.kubernetes.io/") {
			out = append(out, t)
		}
	}
	return out
}

// ownTaints is have's taints without the host's own.
func ownTaints(have []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range have {
		if !strings.HasPrefix(t.Key, "node.kubernetes.io/") {
			out = append(out, t)
		}
	}
	return out
}

func subset(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// merge copies from into into (made when nil) and returns it.
func merge(into, from map[string]string) map[string]string {
	if into == nil {
		into = map[string]string{}
	}
	maps.Copy(into, from)
	return into
}
