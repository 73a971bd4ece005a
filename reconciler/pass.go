package reconciler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/kustomize/base/crds"
	"kosmos.io/kosmos/reconciler/apply"
	"kosmos.io/kosmos/reconciler/inventory"
	"kosmos.io/kosmos/reconciler/mcs"
	"kosmos.io/kosmos/reconciler/plan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// ClusterReport is what one pass did in one cluster.
type ClusterReport struct {
	Name   string
	Result apply.Result
	// StatusWrites counts the ServiceExport and ServiceImport status writes.
	StatusWrites int
	Err          error
	// Leaving says the cluster left the topology: the pass prunes what
	// Kosmos wrote there, then forgets it. While it cannot be reached, Err
	// says so and the cleanup stays pending.
	Leaving bool
	// Forgotten says the cluster's inventory record was dropped: cleaned
	// up, or forgotten on request (kosmos.io/forget-clusters).
	Forgotten bool
}

// Report is what one pass did.
type Report struct {
	Clusters []ClusterReport
	// Problems the planner reported.
	Problems []string
	// Facts observed (or carried over) in this pass, by cluster.
	Facts plan.Facts
	// Guard is the deletion guard's verdict; when Tripped the pass wrote
	// nothing.
	Guard inventory.Guard
	// Refused says why the pass wrote nothing (RequireAll and a cluster
	// that could not be observed).
	Refused error
	// Inventory is what Kosmos owns after the pass, by cluster.
	Inventory inventory.Inventory
	// InventoryErr says the inventory could not be read (prune was off) or
	// saved; Inventory is then to be carried to the next pass (Unsaved).
	InventoryErr error
	// Saved says the pass recorded Inventory in the host: nothing is left
	// to carry.
	Saved bool
}

// PassOptions tune a pass.
type PassOptions struct {
	// Prune deletes what the inventory records and the plan no longer
	// holds, including everything in clusters that left the topology.
	Prune bool
	// Concurrency bounds how many clusters are worked on at once.
	Concurrency int
	// ClusterTimeout bounds each phase (observe, apply) in one cluster, so a
	// cluster whose API server hangs cannot hold the pass for longer
	// (default 5m; each request is also bounded, see RequestTimeout).
	ClusterTimeout time.Duration
	// Known are facts to use for clusters that cannot be observed now (the
	// last ones seen), so that their peers keep their routes to them and
	// their exports stay imported (until EndpointExpiry).
	Known plan.Facts
	// CRDsInstalled records, by cluster, that the CRDs are in place; such
	// clusters are not checked again. Pass marks the clusters it installs
	// them in. Nil: check every cluster.
	CRDsInstalled *sync.Map
	// EndpointExpiry is how long the endpoints of a cluster that stopped
	// answering stay imported; zero keeps them.
	EndpointExpiry time.Duration
	// Started is when the reconciler started (default: now). A cluster not
	// reached since keeps what the others hold imported from it until
	// EndpointExpiry has passed since then.
	Started time.Time
	// Connect reaches clusters that left the topology, given a topology
	// that holds just them (as their inventory records them). Nil: such
	// clusters stay pending.
	Connect func(*v1alpha1.KosmosTopology) ([]Cluster, error)
	// Unsaved is what earlier passes applied but could not record; it is
	// merged into the stored inventory.
	Unsaved inventory.Inventory
	// GuardPercent is the share of owned objects one pass may delete without
	// confirmation (default 50; 100 turns the guard off).
	GuardPercent int
	// ConfirmDeletions is a guard token confirmed on the command line (the
	// topology's kosmos.io/confirm-deletions annotation counts as well).
	ConfirmDeletions string
	// Forget lists clusters that left the topology to forget without the
	// last prune (the topology's kosmos.io/forget-clusters adds to it).
	Forget []string
	// RequireAll writes nothing unless every cluster of the topology was
	// observed (the CLI's default); otherwise clusters that do not answer
	// are planned from their known or last good facts and the others
	// proceed.
	RequireAll bool
	// PruneAll takes Kosmos out: nothing is desired anywhere; every object
	// the inventory records is pruned (guarded like any pass), then the
	// inventory itself is deleted.
	PruneAll bool
}

func (o *PassOptions) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.ClusterTimeout <= 0 {
		o.ClusterTimeout = 5 * time.Minute
	}
}

// Pass makes every reachable cluster hold the topology's desired state:
// observe every cluster (installing the CRDs where missing), plan (the same
// plan render and diff show), check the deletion guard, then apply and
// prune cluster by cluster in parallel and record the inventory. A failing
// cluster never stops the others.
func Pass(ctx context.Context, t *v1alpha1.KosmosTopology, clusters []Cluster, opts PassOptions) Report {
	opts.defaults()
	p := prepare(ctx, t, clusters, opts, true)
	rep := Report{Problems: p.plan.Problems, Facts: p.facts, Guard: p.guard, Inventory: p.inv, InventoryErr: p.invErr}
	rep.Clusters = make([]ClusterReport, len(p.clusters))
	for i, c := range p.clusters {
		rep.Clusters[i] = ClusterReport{Name: c.Name, Err: p.errs[i], Leaving: p.leaving[c.Name]}
		if errors.Is(p.errs[i], errForgotten) {
			rep.Clusters[i] = ClusterReport{Name: c.Name, Leaving: true, Forgotten: true, Err: errForgotten}
		}
	}
	for _, name := range p.forgotten {
		if !slices.ContainsFunc(rep.Clusters, func(cr ClusterReport) bool { return cr.Name == name }) {
			rep.Clusters = append(rep.Clusters, ClusterReport{Name: name, Leaving: true, Forgotten: true})
		}
	}
	if p.guard.Tripped {
		return rep // nothing is written: the last state stays
	}
	if opts.RequireAll {
		if unobserved := p.unobserved(t); len(unobserved) > 0 {
			rep.Refused = fmt.Errorf("nothing applied: %s could not be observed (--partial applies the others and plans these from their last good facts)", strings.Join(unobserved, ", "))
			return rep
		}
	}
	if opts.PruneAll && p.invErr != nil {
		for i := range rep.Clusters {
			rep.Clusters[i].Err = cmp.Or(rep.Clusters[i].Err, p.invErr)
		}
		return rep // without the inventory there is no knowing what to take out
	}
	next := p.inv.Clone()
	var mu sync.Mutex
	forEach(ctx, p.clusters, opts.Concurrency, opts.ClusterTimeout, func(ctx context.Context, i int, c Cluster) {
		cr := &rep.Clusters[i]
		if cr.Err != nil {
			return
		}
		entries := p.applyCluster(ctx, c, cr)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case cr.Leaving && cr.Err == nil && len(entries) == 0:
			delete(next, c.Name) // cleaned up: forgotten
			cr.Forgotten = true
		case cr.Leaving:
			if r := next[c.Name]; r != nil {
				r.Objects = entries
			}
		default:
			spec := t.Spec.Cluster(c.Name)
			next[c.Name] = &inventory.Record{Role: spec.Role, Kubeconfig: *spec.Kubeconfig.DeepCopy(), Objects: entries}
		}
	})
	rep.Inventory = next
	if err := p.saveInventory(ctx, next); err != nil {
		rep.InventoryErr = errors.Join(rep.InventoryErr, err)
	} else {
		rep.Saved = p.store != nil && p.invErr == nil
	}
	if err := p.saveFacts(ctx, t); err != nil {
		rep.InventoryErr = errors.Join(rep.InventoryErr, err)
	}
	return rep
}

func ensureCRDsOnce(ctx context.Context, c Cluster, done *sync.Map) error {
	if done != nil {
		if _, ok := done.Load(c.Name); ok {
			return nil
		}
	}
	if err := EnsureCRDs(ctx, c.Client); err != nil {
		return err
	}
	if done != nil {
		done.Store(c.Name, true)
	}
	return nil
}

// forEach runs fn for every cluster, at most limit at once, each under its
// own deadline.
func forEach(ctx context.Context, clusters []Cluster, limit int, timeout time.Duration, fn func(context.Context, int, Cluster)) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, c := range clusters {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			fn(cctx, i, c)
		})
	}
	wg.Wait()
}

// EnsureCRDs installs or updates the Kosmos CRDs by server-side apply (no
// write when they are current) and waits until they are established.
func EnsureCRDs(ctx context.Context, c client.Client) error {
	manifests, err := crds.Manifests()
	if err != nil {
		return err
	}
	var objs []client.Object
	for _, m := range manifests {
		crd := &apiextv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(m, crd); err != nil {
			return fmt.Errorf("embedded CRD: %w", err)
		}
		crd.Labels = map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy}
		objs = append(objs, crd)
	}
	if _, _, err := apply.Cluster(ctx, c, objs, apply.Options{}); err != nil {
		return fmt.Errorf("install CRDs: %w", err)
	}
	for _, o := range objs {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			var crd apiextv1.CustomResourceDefinition
			if err := c.Get(ctx, client.ObjectKey{Name: o.GetName()}, &crd); err != nil {
				return false, nil
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextv1.Established && cond.Status == apiextv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not established: %w", o.GetName(), err)
		}
	}
	return nil
}

// applyCluster applies one cluster's plan (nothing, for a cluster that left)
// and prunes its stale inventory entries, then writes the MCS statuses. It
// fills cr and returns the cluster's new inventory entries.
func (p *prepared) applyCluster(ctx context.Context, c Cluster, cr *ClusterReport) []inventory.Entry {
	var objs []client.Object
	var cp *plan.Cluster
	if !cr.Leaving {
		cp = p.plan.Cluster(c.Name)
		objs = cp.Objects
	}
	var old []inventory.Entry
	if r := p.inv[c.Name]; r != nil {
		old = r.Objects
	}
	res, entries, err := apply.Cluster(ctx, c.Client, objs, apply.Options{Inventory: old, Prune: p.prune})
	if cp != nil {
		n, serr := mcs.WriteStatus(ctx, c.Client, v1alpha1.FieldManager, cp.Exports, cp.Imports)
		cr.StatusWrites = n
		err = errors.Join(err, serr)
	}
	if err != nil && cr.Leaving {
		err = fmt.Errorf("left the topology; its cleanup is pending: %w", err)
	}
	cr.Result, cr.Err = res, err
	return entries
}

// unobserved lists the clusters of the topology not observed in this pass.
func (p *prepared) unobserved(t *v1alpha1.KosmosTopology) []string {
	var out []string
	for _, c := range t.Spec.Clusters {
		if !p.observed[c.Name] {
			out = append(out, c.Name)
		}
	}
	return out
}
