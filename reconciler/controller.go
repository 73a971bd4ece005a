package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Controller keeps every cluster matching a topology file: it re-plans when
// the file changes (including the atomic symlink swap of a mounted ConfigMap
// or a git-sync checkout), when the facts change (a node joins, leaves,
// becomes NotReady, changes address) and on every resync (reverting drift).
// An invalid file never reaches the clusters: the last good topology stays
// in force and the problems are reported.
type Controller struct {
	TopologyPath string
	// Connect reaches the clusters of a topology (ConnectContexts for the
	// CLI).
	Connect func(*v1alpha1.KosmosTopology) ([]Cluster, error)
	Resync  time.Duration
	Prune   bool
	Log     *slog.Logger
	// OnPass, when set, receives every pass's report (tests, status).
	OnPass func(Report, error)

	mu       sync.Mutex
	lastGood *v1alpha1.KosmosTopology
	lastRaw  []byte
	known    netplan.Facts
	loadErr  error
}

// Status is what the controller knows now.
func (c *Controller) Status() (topology *v1alpha1.KosmosTopology, loadErr error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastGood, c.loadErr
}

// Run works until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	if c.Resync <= 0 {
		c.Resync = time.Minute
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	trigger := make(chan struct{}, 1)
	fire := func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	if err := c.watchFile(ctx, fire); err != nil {
		return err
	}
	tick := time.NewTicker(c.Resync)
	defer tick.Stop()
	var watching context.CancelFunc
	var clusters []Cluster
	var clustersOf *v1alpha1.KosmosTopology
	var crds *sync.Map
	fire()
	for {
		select {
		case <-ctx.Done():
			if watching != nil {
				watching()
			}
			return nil
		case <-tick.C:
		case <-trigger:
			debounce(ctx, trigger, 100*time.Millisecond)
		}
		t := c.load()
		if t == nil {
			continue
		}
		if t != clustersOf { // a new topology: reconnect, rewatch the nodes
			cs, err := c.Connect(t)
			if err != nil {
				c.Log.Error("connect clusters", "err", err)
				continue
			}
			if watching != nil {
				watching()
			}
			var wctx context.Context
			wctx, watching = context.WithCancel(ctx)
			for _, cl := range cs {
				if cl.Err == nil {
					go watchNodes(wctx, cl, fire, c.Log)
				}
			}
			clusters, clustersOf = cs, t
			crds = &sync.Map{}
		}
		c.pass(ctx, t, clusters, crds)
	}
}

func debounce(ctx context.Context, trigger chan struct{}, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
			timer.Reset(d)
		case <-timer.C:
			return
		}
	}
}

func (c *Controller) pass(ctx context.Context, t *v1alpha1.KosmosTopology, clusters []Cluster, crds *sync.Map) {
	c.mu.Lock()
	known := c.known
	c.mu.Unlock()
	start := time.Now()
	rep := Pass(ctx, t, clusters, PassOptions{Prune: c.Prune, Known: known, CRDsInstalled: crds})
	if ctx.Err() != nil {
		return // shutting down: errors now are cancellations, not failures
	}
	var errs []error
	for _, cr := range rep.Clusters {
		observeCluster(cr, time.Since(start))
		if cr.Err != nil {
			errs = append(errs, cr.Err)
			crds.Delete(cr.Name) // check the CRDs again next time
		}
		if w := cr.Result.Writes(); w > 0 {
			c.Log.Info("cluster reconciled", "cluster", cr.Name, "created", len(cr.Result.Created), "updated", len(cr.Result.Updated), "pruned", len(cr.Result.Pruned))
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		c.Log.Error("pass finished with errors", "err", err)
	}
	c.mu.Lock()
	c.known = rep.Facts
	c.mu.Unlock()
	if c.OnPass != nil {
		c.OnPass(rep, err)
	}
}

// load reads the topology file; an invalid one is reported and the last
// good topology returned (the same pointer while the file is unchanged).
func (c *Controller) load() *v1alpha1.KosmosTopology {
	data, err := os.ReadFile(c.TopologyPath)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && c.lastGood != nil && string(data) == string(c.lastRaw) {
		return c.lastGood
	}
	var t *v1alpha1.KosmosTopology
	if err == nil {
		t, err = schema.Load(c.TopologyPath, data)
	}
	if err != nil {
		c.loadErr = err
		c.Log.Error("topology rejected; the last good one stays in force", "file", c.TopologyPath, "problems", err.Error())
		return c.lastGood
	}
	c.lastGood, c.lastRaw, c.loadErr = t, data, nil
	return t
}

// watchFile fires on any change in the file's directory that touches the
// file or the symlinks it is reached through (ConfigMap ..data swaps,
// git-sync's link).
func (c *Controller) watchFile(ctx context.Context, fire func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", c.TopologyPath, err)
	}
	dir := filepath.Dir(c.TopologyPath)
	if err := w.Add(dir); err != nil {
		w.Close()
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				fire() // any change in the directory may swap the file in
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				c.Log.Error("file watch", "err", err)
			}
		}
	}()
	return nil
}

// watchNodes fires when a node's planner-relevant facts change (not on
// heartbeats), restarting the watch when it ends.
func watchNodes(ctx context.Context, cl Cluster, fire func(), log *slog.Logger) {
	wc, err := client.NewWithWatch(cl.Config, client.Options{Scheme: cl.Client.Scheme()})
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
			f := desired.FactsOf([]corev1.Node{*n}, nil).Nodes[0]
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
