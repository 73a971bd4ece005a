package reconciler

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/reconciler/inventory"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/reconciler/plan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Controller keeps every cluster matching a topology: it re-plans when the
// source changes (a file, including the atomic symlink swap of a mounted
// ConfigMap or a git-sync checkout, or a KosmosTopology object), when the
// facts change (a node joins, leaves, becomes NotReady, changes address) and
// on every resync (reverting drift, reconnecting failed clusters). An invalid
// topology never reaches the clusters: the last good one stays in force and
// the problems are reported (logs, and the object's status and events).
type Controller struct {
	// Source of the topology; FileSource{TopologyPath} when nil.
	Source       Source
	TopologyPath string
	// Connect reaches the clusters of a topology (ConnectContexts for the
	// CLI).
	Connect func(*v1alpha1.KosmosTopology) ([]Cluster, error)
	Resync  time.Duration
	Prune   bool
	// ClusterTimeout bounds each phase of a pass in one cluster (default
	// 5m): a hung API server delays no one else for longer.
	ClusterTimeout time.Duration
	// EndpointExpiry is how long the imported endpoints of a cluster that
	// stopped answering are kept (default 2m).
	EndpointExpiry time.Duration
	// GuardPercent is the share of owned objects one pass may delete
	// without confirmation (default 50; 100 turns the guard off).
	GuardPercent int
	Log          *slog.Logger
	// OnPass, when set, receives every pass's report (tests, status).
	OnPass func(Report, error)

	mu          sync.Mutex
	lastGood    *v1alpha1.KosmosTopology
	lastVersion string // of lastGood
	seen        string // version of the last document read, good or not
	known       plan.Facts
	// unsaved is what passes applied but could not record in the host.
	unsaved inventory.Inventory
	started time.Time
	loadErr error
}

// Status is what the controller knows now.
func (c *Controller) Status() (topology *v1alpha1.KosmosTopology, loadErr error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastGood, c.loadErr
}

// Run works until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	c.defaults()
	trigger := make(chan struct{}, 1)
	fire := func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	if err := c.Source.Watch(ctx, fire, c.Log); err != nil {
		return err
	}
	tick := time.NewTicker(c.Resync)
	defer tick.Stop()
	var conn connection
	defer conn.stop()
	fire()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if slices.ContainsFunc(conn.clusters, func(c Cluster) bool { return c.Err != nil }) || conn.rotated(c) {
				conn.of = nil // retry the clusters that could not be reached, or take up new credentials
			}
		case <-trigger:
			debounce(ctx, trigger, debounceQuiet, debounceMost)
		}
		t, fresh := c.load(ctx)
		if t == nil {
			continue
		}
		if fresh {
			c.report(ctx, Outcome{Version: c.lastVersion, Progressing: true})
		}
		if t != conn.of { // a new topology: reconnect, rewatch the nodes and exports
			if err := conn.connect(ctx, c, t, fire); err != nil {
				c.Log.Error("connect clusters", "err", err)
				continue
			}
		}
		c.pass(ctx, t, conn.clusters, conn.crds)
	}
}

func (c *Controller) defaults() {
	if c.Resync <= 0 {
		c.Resync = time.Minute
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.EndpointExpiry <= 0 {
		c.EndpointExpiry = 2 * time.Minute
	}
	c.started = time.Now()
	if c.Source == nil {
		c.Source = FileSource{Path: c.TopologyPath}
	}
}

// connection is the controller's clients of one topology, and the watches
// that wake it.
type connection struct {
	of       *v1alpha1.KosmosTopology
	clusters []Cluster
	crds     *sync.Map
	stopW    context.CancelFunc
}

// connect reaches the clusters of t and watches their nodes, exports and
// agents' reports, ending the watches of the previous topology.
func (conn *connection) connect(ctx context.Context, c *Controller, t *v1alpha1.KosmosTopology, fire func()) error {
	cs, err := c.Connect(t)
	if err != nil {
		return err
	}
	for _, cl := range t.Spec.Clusters {
		if cl.SharesTreeIdentity() {
			c.Log.Warn("member has no kubeconfig.treeSecretRef: the tree uses the reconciler's kubeconfig Secret, so each holds the other's rights there; give the tree its own (see SECURITY.md)", "cluster", cl.Name)
		}
	}
	conn.stop()
	var wctx context.Context
	wctx, conn.stopW = context.WithCancel(ctx)
	for _, cl := range cs {
		if cl.Err == nil {
			go watchNodes(wctx, cl, fire, c.Log)
			go watchServices(wctx, cl, t.Spec.Services, fire, c.Log)
			go watchNodeConfigs(wctx, cl, fire, c.Log)
			if spec := t.Spec.Cluster(cl.Name); spec != nil && spec.NetworkEnabled() {
				go watchCNI(wctx, cl, spec.Network.IPAM, fire, c.Log)
			}
		}
	}
	conn.clusters, conn.of, conn.crds = cs, t, &sync.Map{}
	return nil
}

// rotated reports whether the credentials of a connected cluster changed
// since it was connected (its kubeconfig Secret was rewritten, as when a
// short-lived token is rotated): the clients still hold the old token,
// which will expire or has been revoked, so the clusters are connected
// again. It costs one read of each kubeconfig Secret per resync.
func (conn *connection) rotated(c *Controller) bool {
	if conn.of == nil {
		return false
	}
	fresh, err := c.Connect(conn.of)
	if err != nil {
		return false
	}
	had := map[string]string{}
	for _, cl := range conn.clusters {
		had[cl.Name] = cl.Credentials
	}
	for _, cl := range fresh {
		if cl.Err == nil && cl.Credentials != had[cl.Name] {
			c.Log.Info("kubeconfig Secret changed: connecting again", "cluster", cl.Name)
			return true
		}
	}
	return false
}

func (conn *connection) stop() {
	if conn.stopW != nil {
		conn.stopW()
	}
}

// A pass follows the last of a burst of events by debounceQuiet, and the
// first by debounceMost at the latest.
const (
	debounceQuiet = 100 * time.Millisecond
	debounceMost  = 2 * time.Second
)

func debounce(ctx context.Context, trigger chan struct{}, quiet, most time.Duration) {
	timer := time.NewTimer(quiet)
	defer timer.Stop()
	deadline := time.NewTimer(most)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
			timer.Reset(quiet)
		case <-timer.C:
			return
		case <-deadline.C:
			return
		}
	}
}

func (c *Controller) pass(ctx context.Context, t *v1alpha1.KosmosTopology, clusters []Cluster, crds *sync.Map) {
	c.mu.Lock()
	known, unsaved := c.known, c.unsaved
	c.mu.Unlock()
	start := time.Now()
	rep := Pass(ctx, t, clusters, PassOptions{Prune: c.Prune, Known: known, EndpointExpiry: c.EndpointExpiry, Started: c.started,
		CRDsInstalled: crds, ClusterTimeout: c.ClusterTimeout, Connect: c.Connect, Unsaved: unsaved, GuardPercent: c.GuardPercent,
		PruneAll: t.DeletionTimestamp != nil})
	if ctx.Err() != nil {
		return // shutting down: errors now are cancellations, not failures
	}
	for _, cr := range rep.Clusters {
		observeCluster(cr, time.Since(start))
		if cr.Err != nil {
			crds.Delete(cr.Name) // check the CRDs again next time
		}
		if w := cr.Result.Writes(); w > 0 {
			c.Log.Info("cluster reconciled", "cluster", cr.Name, "created", len(cr.Result.Created), "updated", len(cr.Result.Updated), "pruned", len(cr.Result.Pruned))
		}
		if cr.Forgotten {
			c.Log.Info("cluster left the topology and is forgotten", "cluster", cr.Name)
		}
	}
	err := rep.Err()
	if err != nil {
		c.Log.Error("pass finished with errors", "err", err)
	}
	c.mu.Lock()
	c.known = rep.Facts
	if rep.Saved {
		c.unsaved = nil
	} else if rep.InventoryErr != nil {
		c.unsaved = rep.Inventory // carried until a save succeeds
	} // else nothing was written (guard, refusal): what was carried stays carried
	version := c.lastVersion
	c.mu.Unlock()
	c.report(ctx, Outcome{Version: version, Pass: &rep, PassErr: err})
	if t.DeletionTimestamp != nil && err == nil && rep.Saved && len(rep.Inventory) == 0 {
		c.release(ctx)
	}
	if c.OnPass != nil {
		c.OnPass(rep, err)
	}
}

// release lets a deleted topology go once a pass pruned everything Kosmos
// wrote for it; from then on nothing is reconciled.
func (c *Controller) release(ctx context.Context) {
	if err := c.Source.Release(ctx); err != nil {
		c.Log.Error("release the deleted topology", "source", c.Source.String(), "err", err)
		return
	}
	c.Log.Info("topology deleted: everything Kosmos wrote for it is pruned", "source", c.Source.String())
	c.mu.Lock()
	c.lastGood, c.lastVersion, c.seen = nil, "", ""
	c.mu.Unlock()
}

// load reads the source. An invalid document is reported once and the last
// good topology returned; fresh says the topology is newly accepted. While
// the source is unchanged the same pointer comes back.
func (c *Controller) load(ctx context.Context) (t *v1alpha1.KosmosTopology, fresh bool) {
	t, version, err := c.Source.Read(ctx)
	c.mu.Lock()
	lastGood, lastVersion, seen := c.lastGood, c.lastVersion, c.seen
	c.mu.Unlock()
	switch {
	case err == nil && version == lastVersion && lastGood != nil:
		c.mu.Lock()
		c.loadErr, c.seen = nil, version // back to the good document
		c.mu.Unlock()
		return lastGood, false
	case errors.Is(err, ErrGone):
		if lastGood != nil || seen != "" {
			c.Log.Info("topology is gone: nothing to reconcile", "source", c.Source.String())
		}
		c.mu.Lock()
		c.lastGood, c.lastVersion, c.seen, c.loadErr = nil, "", "", nil
		c.mu.Unlock()
		return nil, false
	case err != nil && version == seen && version != "":
		return lastGood, false // rejected before; reported then
	case err != nil:
		c.mu.Lock()
		c.loadErr, c.seen = err, version
		c.mu.Unlock()
		c.Log.Error("topology rejected; the last good one stays in force", "source", c.Source.String(), "problems", err.Error())
		metricRejected.Inc()
		if version != "" {
			c.report(ctx, Outcome{Version: version, Rejected: err})
		}
		return lastGood, false
	}
	c.mu.Lock()
	c.lastGood, c.lastVersion, c.seen, c.loadErr = t, version, version, nil
	c.mu.Unlock()
	return t, true
}

func (c *Controller) report(ctx context.Context, o Outcome) {
	if err := c.Source.Report(ctx, o); err != nil && ctx.Err() == nil {
		c.Log.Error("report status", "source", c.Source.String(), "err", err)
	}
}

// watchNodes fires when a node's planner-relevant facts change (not on
// heartbeats), restarting the watch when it ends.
func watchNodes(ctx context.Context, cl Cluster, fire func(), log *slog.Logger) {
	cfg := rest.CopyConfig(cl.Config)
	cfg.Timeout = 0 // a watch lasts
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: cl.Client.Scheme()})
	if err != nil {
		log.Error("node watch", "cluster", cl.Name, "err", err)
		return
	}
	seen := map[string]netplan.Node{}
	for ctx.Err() == nil {
		w, err := wc.Watch(ctx, &corev1.NodeList{})
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
			continue
		}
		for ev := range w.ResultChan() {
			n, ok := ev.Object.(*corev1.Node)
			if !ok {
				continue
			}
			facts := desired.FactsOf([]corev1.Node{*n}, nil).Nodes
			if len(facts) == 0 {
				continue // a virtual node: no machine, nothing to plan
			}
			f := facts[0]
			old, had := seen[n.Name]
			switch {
			case ev.Type == watch.Deleted:
				delete(seen, n.Name)
				fire()
			case !had || !reflect.DeepEqual(old, f):
				seen[n.Name] = f
				fire()
			}
		}
		w.Stop()
	}
}

// watchServices fires when what the multi-cluster service sync reads
// changes: ServiceExports, and the EndpointSlices of services that are
// exported there or named by spec.services (those with
// kubernetes.io/service-name; the imported ones Kosmos writes lack it, or
// carry a derived Service's name, which is not exported: its own writes do
// not wake it up), and the creation or deletion of a
// Service Kosmos derived from an import (its ClusterIP is the import's
// spec.ips). Slices of other services change no plan and wake nothing.
func watchServices(ctx context.Context, cl Cluster, specs []v1alpha1.ServiceSpec, fire func(), log *slog.Logger) {
	cfg := rest.CopyConfig(cl.Config)
	cfg.Timeout = 0
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: cl.Client.Scheme()})
	if err != nil {
		log.Error("service watch", "cluster", cl.Name, "err", err)
		return
	}
	ex := newExported(specs)
	watchLoop := func(list client.ObjectList, onEvent func(watch.Event), opts ...client.ListOption) {
		for ctx.Err() == nil {
			w, err := wc.Watch(ctx, list, opts...)
			if err != nil {
				select { // the CRD may not be installed yet, or the cluster is down
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
				}
				continue
			}
			for ev := range w.ResultChan() {
				onEvent(ev)
			}
			w.Stop()
		}
	}
	go watchLoop(&mcsv1a1.ServiceExportList{}, func(ev watch.Event) {
		if o, ok := ev.Object.(client.Object); ok {
			ex.set(o.GetNamespace()+"/"+o.GetName(), ev.Type != watch.Deleted)
		}
		fire()
	})
	// A derived Service created (its ClusterIP allocated) or deleted: the
	// next pass writes the VIP into the ServiceImport, or re-creates it.
	// Each UID fires once, not again when a watch restarts.
	derived := map[types.UID]bool{}
	go watchLoop(&corev1.ServiceList{}, func(ev watch.Event) {
		s, ok := ev.Object.(*corev1.Service)
		if !ok || (ev.Type != watch.Deleted && derived[s.UID]) {
			return
		}
		derived[s.UID] = ev.Type != watch.Deleted
		fire()
	}, client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy}, client.HasLabels{mcsv1a1.LabelServiceName})
	watchLoop(&discoveryv1.EndpointSliceList{}, func(ev watch.Event) {
		if s, ok := ev.Object.(*discoveryv1.EndpointSlice); ok && ex.has(s.Namespace+"/"+s.Labels[discoveryv1.LabelServiceName]) {
			fire()
		}
	}, client.HasLabels{discoveryv1.LabelServiceName})
}

// exported is the set of services (namespace/name) whose endpoints matter
// to the plan: exported in this cluster, or named by spec.services.
type exported struct {
	mu   sync.Mutex
	keys map[string]bool
	spec map[string]bool
}

func newExported(specs []v1alpha1.ServiceSpec) *exported {
	e := &exported{keys: map[string]bool{}, spec: map[string]bool{}}
	for _, s := range specs {
		e.spec[s.Namespace+"/"+s.Name] = true
	}
	return e
}

func (e *exported) set(key string, on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if on {
		e.keys[key] = true
	} else {
		delete(e.keys, key)
	}
}

func (e *exported) has(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.spec[key] || e.keys[key]
}
