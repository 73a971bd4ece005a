package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"kosmos.io/kosmos/reconciler/apply"
	"kosmos.io/kosmos/reconciler/inventory"
	"kosmos.io/kosmos/reconciler/mcs"
	"kosmos.io/kosmos/reconciler/plan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// prepared is a pass up to its first write: what was observed, the
// inventory, the clusters that left, the plan and the guard's verdict. A
// pass and a live diff share it, so the diff shows what the pass does.
type prepared struct {
	// clusters are the topology's, then those that left it (leaving).
	clusters []Cluster
	// errs, by index of clusters: why a cluster cannot be worked on.
	errs    []error
	leaving map[string]bool
	// forgotten are clusters that left and are dropped without cleanup.
	forgotten []string
	facts     plan.Facts
	plan      plan.Plan
	// inv is the inventory the pass starts from (stored ∪ unsaved, with
	// legacy sweeps for reachable clusters that had no record); stored is
	// what the host holds (nil when it could not be read).
	inv, stored inventory.Inventory
	invErr      error
	store       *inventory.Store
	// prune: deletions happen (asked for, and the inventory was read).
	prune bool
	// deletions are what prune would delete, by cluster.
	deletions map[string][]inventory.Entry
	guard     inventory.Guard
	pruneAll  bool
	// observed are the clusters whose facts were read in this pass; the
	// others are planned from known or persisted (last good) facts.
	observed map[string]bool
	// lastGood is the persisted record of the last good facts, as stored.
	lastGood     persistedFacts
	lastGoodData map[string]string
	factsStore   *factsStore
}

// prepare observes the clusters (installing the CRDs first when install),
// reads the inventory, reaches the clusters that left the topology, plans
// and judges the deletions. It writes nothing unless install.
func prepare(ctx context.Context, t *v1alpha1.KosmosTopology, clusters []Cluster, opts PassOptions, install bool) *prepared {
	p := &prepared{clusters: slices.Clone(clusters), leaving: map[string]bool{}, facts: plan.Facts{}, pruneAll: opts.PruneAll, observed: map[string]bool{}}
	p.errs = make([]error, len(p.clusters))
	now := time.Now()
	p.observe(ctx, t, opts, install, now)
	p.loadInventory(ctx, t, opts)
	p.recoverFacts(ctx, t)
	p.reachLeaving(t, opts)
	p.adoptLegacy(ctx, t, opts)
	p.plan = plan.Compute(plan.Input{Topology: t, Facts: p.facts, Now: now, Started: opts.Started, EndpointExpiry: opts.EndpointExpiry})
	p.judge(t, opts)
	return p
}

// observe reads every topology cluster's facts; a cluster that cannot be
// observed keeps its known facts (opts.Known) and is not applied.
func (p *prepared) observe(ctx context.Context, t *v1alpha1.KosmosTopology, opts PassOptions, install bool, now time.Time) {
	var mu sync.Mutex
	forEach(ctx, p.clusters, opts.Concurrency, opts.ClusterTimeout, func(ctx context.Context, i int, c Cluster) {
		err := c.Err
		var cf plan.ClusterFacts
		if err == nil && install {
			err = ensureCRDsOnce(ctx, c, opts.CRDsInstalled)
		}
		if err == nil {
			var ipam v1alpha1.IPAMSource
			if spec := t.Spec.Cluster(c.Name); spec != nil {
				ipam = spec.Network.IPAM
			}
			cf.ClusterFacts, err = Observe(ctx, c.Client, ipam)
		}
		if err == nil {
			cf.Services, err = mcs.Observe(ctx, c.Client, t.Name, t.Spec.Services, now)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			p.errs[i] = err
			if known, ok := opts.Known[c.Name]; ok {
				p.facts[c.Name] = known
			}
			return
		}
		p.facts[c.Name] = cf
		p.observed[c.Name] = true
	})
}

// recoverFacts plans the clusters that could not be observed, and whose
// facts this process does not know, from the last good facts persisted in
// the host: a cluster is never planned out for not answering.
func (p *prepared) recoverFacts(ctx context.Context, t *v1alpha1.KosmosTopology) {
	h, err := p.host(t)
	if err != nil {
		return
	}
	p.factsStore = &factsStore{c: h.Client, topology: t.Name}
	last, data, err := p.factsStore.load(ctx)
	if err != nil {
		p.factsStore = nil // unreadable: leave it alone rather than overwrite it
		return
	}
	p.lastGood, p.lastGoodData = last, data
	for _, c := range t.Spec.Clusters {
		if _, ok := p.facts[c.Name]; !ok {
			if f, ok := last[c.Name]; ok {
				p.facts[c.Name] = plan.ClusterFacts{ClusterFacts: f}
			}
		}
	}
}

// saveFacts records the facts observed in this pass as the last good ones
// (writing only when they changed); clusters that left are dropped.
func (p *prepared) saveFacts(ctx context.Context, t *v1alpha1.KosmosTopology) error {
	if p.factsStore == nil {
		return nil
	}
	if p.pruneAll {
		return p.factsStore.delete(ctx)
	}
	next := persistedFacts{}
	for name, f := range p.lastGood {
		if t.Spec.Cluster(name) != nil {
			next[name] = f
		}
	}
	for name := range p.observed {
		next[name] = trimFacts(t, p.facts[name].ClusterFacts)
	}
	return p.factsStore.save(ctx, next, p.lastGoodData)
}

// hostClient returns the host cluster's entry, if it can be worked on.
func (p *prepared) host(t *v1alpha1.KosmosTopology) (Cluster, error) {
	h := t.Spec.Host()
	for i, c := range p.clusters {
		if h != nil && c.Name == h.Name {
			if p.errs[i] != nil {
				return c, fmt.Errorf("the host cluster %s holds the inventory and cannot be reached: %w", c.Name, p.errs[i])
			}
			return c, nil
		}
	}
	return Cluster{}, errors.New("the topology has no host cluster to hold the inventory")
}

// loadInventory reads the stored inventory and merges what earlier passes
// could not save. Without it nothing is pruned this pass.
func (p *prepared) loadInventory(ctx context.Context, t *v1alpha1.KosmosTopology, opts PassOptions) {
	p.inv = inventory.Inventory{}
	h, err := p.host(t)
	if err == nil {
		p.store = &inventory.Store{Client: h.Client, Topology: t.Name}
		p.stored, _, err = p.store.Load(ctx)
	}
	if err != nil {
		p.invErr = fmt.Errorf("inventory unavailable, nothing pruned this pass: %w", err)
		p.stored = nil
	} else {
		p.inv = p.stored
	}
	if opts.Unsaved != nil {
		p.inv = inventory.Merge(p.inv, opts.Unsaved)
	}
	p.prune = (opts.Prune || opts.PruneAll) && p.invErr == nil
}

// errForgotten marks a topology cluster forgotten while Kosmos is taken out:
// it is neither worked on nor reported as failing.
var errForgotten = errors.New("forgotten")

// reachLeaving finds the recorded clusters the topology no longer holds
// (every recorded cluster, with PruneAll), forgets those the user asked to
// forget, and connects the others for their last prune.
func (p *prepared) reachLeaving(t *v1alpha1.KosmosTopology, opts PassOptions) {
	forget := slices.Clone(opts.Forget)
	for _, n := range strings.Split(t.Annotations[v1alpha1.AnnotationForgetClusters], ",") {
		if n = strings.TrimSpace(n); n != "" {
			forget = append(forget, n)
		}
	}
	if p.pruneAll {
		// Every cluster leaves; one the user forgets (gone for good, say)
		// is dropped now, so it cannot hold the others' cleanup forever.
		for i := range p.clusters {
			name := p.clusters[i].Name
			p.leaving[name] = true
			if slices.Contains(forget, name) {
				delete(p.inv, name)
				p.forgotten = append(p.forgotten, name)
				p.errs[i] = errForgotten
			}
		}
	}
	gone := &v1alpha1.KosmosTopology{ObjectMeta: t.ObjectMeta}
	for _, name := range p.inv.Clusters() {
		if t.Spec.Cluster(name) != nil {
			continue
		}
		if slices.Contains(forget, name) {
			delete(p.inv, name)
			p.forgotten = append(p.forgotten, name)
			continue
		}
		r := p.inv[name]
		gone.Spec.Clusters = append(gone.Spec.Clusters, v1alpha1.ClusterSpec{Name: name, Role: r.Role, Kubeconfig: *r.Kubeconfig.DeepCopy()})
		p.leaving[name] = true
	}
	if len(gone.Spec.Clusters) == 0 {
		return
	}
	var reached []Cluster
	var err error
	if opts.Connect == nil {
		err = errors.New("no way to reach clusters outside the topology here")
	} else {
		reached, err = opts.Connect(gone)
	}
	for _, cs := range gone.Spec.Clusters {
		c := Cluster{Name: cs.Name, Err: err}
		if i := slices.IndexFunc(reached, func(r Cluster) bool { return r.Name == cs.Name }); i >= 0 && err == nil {
			c = reached[i]
		}
		if c.Err != nil {
			c.Err = fmt.Errorf("left the topology; its cleanup is pending: %w", c.Err)
		}
		p.clusters = append(p.clusters, c)
		p.errs = append(p.errs, c.Err)
	}
}

// adoptLegacy gives every reachable cluster without an inventory record the
// objects an earlier version wrote there (a label sweep, once).
func (p *prepared) adoptLegacy(ctx context.Context, t *v1alpha1.KosmosTopology, opts PassOptions) {
	if p.invErr != nil {
		return
	}
	var mu sync.Mutex
	forEach(ctx, p.clusters, opts.Concurrency, opts.ClusterTimeout, func(ctx context.Context, i int, c Cluster) {
		mu.Lock()
		_, has := p.inv[c.Name]
		mu.Unlock()
		if has || p.errs[i] != nil {
			return
		}
		entries, err := apply.LegacyOwned(ctx, c.Client, t.Name)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			p.errs[i] = fmt.Errorf("read what an earlier version applied: %w", err)
			return
		}
		spec := t.Spec.Cluster(c.Name)
		p.inv[c.Name] = &inventory.Record{Role: spec.Role, Kubeconfig: *spec.Kubeconfig.DeepCopy(), Objects: entries}
	})
}

// judge lists what prune would delete and asks the guard.
func (p *prepared) judge(t *v1alpha1.KosmosTopology, opts PassOptions) {
	p.deletions = map[string][]inventory.Entry{}
	if !p.prune {
		return
	}
	var dels []inventory.Deletion
	for _, c := range p.clusters {
		r := p.inv[c.Name]
		if r == nil {
			continue
		}
		want := map[string]bool{}
		if cp := p.plan.Cluster(c.Name); cp != nil && !p.leaving[c.Name] {
			for _, o := range cp.Objects {
				want[apply.KeyOf(o)] = true
			}
		}
		for _, e := range inventory.Stale(r.Objects, want) {
			p.deletions[c.Name] = append(p.deletions[c.Name], e)
			dels = append(dels, inventory.Deletion{Cluster: c.Name, Entry: e})
		}
	}
	confirmed := opts.ConfirmDeletions
	if confirmed == "" {
		confirmed = t.Annotations[v1alpha1.AnnotationConfirmDeletions]
	}
	p.guard = guardVerdict(dels, ownedEntries(p.inv), opts.GuardPercent, confirmed) // probeguard.go
}

// saveInventory records the inventory after a pass (deleting it when a
// PruneAll pass left nothing). Without a readable store it is the caller's
// to carry (Report.Inventory).
func (p *prepared) saveInventory(ctx context.Context, inv inventory.Inventory) error {
	if p.store == nil || p.invErr != nil {
		return nil
	}
	if p.pruneAll && len(inv) == 0 {
		return p.store.Delete(ctx)
	}
	_, err := p.store.Save(ctx, inv, p.stored)
	return err
}
