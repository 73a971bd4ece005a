package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/kustomize/base/crds"
	"kosmos.io/kosmos/reconciler/apply"
	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/reconciler/mcs"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// ClusterReport is what one pass did in one cluster.
type ClusterReport struct {
	Name   string
	Result apply.Result
	// StatusWrites counts the ServiceExport and ServiceImport status writes.
	StatusWrites int
	Err          error
}

// Report is what one pass did.
type Report struct {
	Clusters []ClusterReport
	// Problems the planner reported.
	Problems []string
	// Facts observed (or carried over) in this pass, by cluster.
	Facts netplan.Facts
	// Services are the multi-cluster service facts observed (or carried
	// over, with the time they were observed) in this pass, by cluster.
	Services map[string]*mcs.Facts
}

// PassOptions tune a pass.
type PassOptions struct {
	// Prune deletes owned objects that are no longer desired.
	Prune bool
	// Concurrency bounds how many clusters are worked on at once.
	Concurrency int
	// ClusterTimeout bounds each phase (observe, apply) in one cluster, so a
	// cluster whose API server hangs cannot hold the pass for longer
	// (default 5m; each request is also bounded, see RequestTimeout).
	ClusterTimeout time.Duration
	// Known are facts to use for clusters that cannot be observed now (the
	// last ones seen), so that their peers keep their routes to them.
	Known netplan.Facts
	// CRDsInstalled records, by cluster, that the CRDs are in place; such
	// clusters are not checked again. Pass marks the clusters it installs
	// them in. Nil: check every cluster.
	CRDsInstalled *sync.Map
	// KnownServices are the last multi-cluster service facts of clusters
	// that cannot be observed now: their exports and endpoints stay imported
	// elsewhere until EndpointExpiry has passed since they were observed.
	KnownServices map[string]*mcs.Facts
	// EndpointExpiry is how long the endpoints of a cluster that stopped
	// answering stay imported; zero keeps them.
	EndpointExpiry time.Duration
	// Started is when the reconciler started (default: now). A cluster not
	// reached since keeps what the others hold imported from it until
	// EndpointExpiry has passed since then.
	Started time.Time
}

// Pass makes every reachable cluster hold the topology's desired state:
// Kosmos CRDs first, then observe every cluster, plan, and apply cluster by
// cluster in parallel. A failing cluster never stops the others.
func Pass(ctx context.Context, t *v1alpha1.KosmosTopology, clusters []Cluster, opts PassOptions) Report {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.ClusterTimeout <= 0 {
		opts.ClusterTimeout = 5 * time.Minute
	}
	reports := make([]ClusterReport, len(clusters))
	facts := netplan.Facts{}
	services := map[string]*mcs.Facts{}
	now := time.Now()
	var mu sync.Mutex
	forEach(ctx, clusters, opts.Concurrency, opts.ClusterTimeout, func(ctx context.Context, i int, c Cluster) {
		reports[i].Name = c.Name
		if c.Err != nil {
			reports[i].Err = c.Err
		} else if err := ensureCRDsOnce(ctx, c, opts.CRDsInstalled); err != nil {
			reports[i].Err = fmt.Errorf("cluster %s: %w", c.Name, err)
		} else if f, err := Observe(ctx, c.Client); err != nil {
			reports[i].Err = fmt.Errorf("cluster %s: %w", c.Name, err)
		} else if sf, err := mcs.Observe(ctx, c.Client, t.Name, t.Spec.Services, now); err != nil {
			reports[i].Err = fmt.Errorf("cluster %s: %w", c.Name, err)
		} else {
			mu.Lock()
			facts[c.Name] = f
			services[c.Name] = sf
			mu.Unlock()
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if f, ok := opts.Known[c.Name]; ok {
			facts[c.Name] = f
		}
		if sf := opts.KnownServices[c.Name]; sf != nil {
			services[c.Name] = sf
		}
	})
	st := desired.Compute(t, facts)
	in := mcsInput(t, services, now, opts.EndpointExpiry)
	if in.Started = opts.Started; in.Started.IsZero() {
		in.Started = now
	}
	ms := mcs.Compute(in)
	byName := map[string]desired.ClusterObjects{}
	for _, co := range st.Clusters {
		byName[co.Cluster] = co
	}
	forEach(ctx, clusters, opts.Concurrency, opts.ClusterTimeout, func(ctx context.Context, i int, c Cluster) {
		if reports[i].Err != nil {
			return
		}
		objs := append(slices.Clone(byName[c.Name].Objects), ms.Objects[c.Name]...)
		res, err := apply.Cluster(ctx, c.Client, t.Name, objs, opts.Prune)
		n, serr := mcs.WriteStatus(ctx, c.Client, apply.FieldManager, ms.Exports[c.Name], ms.Imports[c.Name])
		reports[i].StatusWrites = n
		if serr != nil {
			err = errors.Join(err, serr)
		}
		reports[i].Result = res
		if err != nil {
			reports[i].Err = fmt.Errorf("cluster %s: %w", c.Name, err)
		}
	})
	return Report{Clusters: reports, Problems: st.Problems, Facts: facts, Services: services}
}

// mcsInput is the export → import sync's view of the topology and facts.
func mcsInput(t *v1alpha1.KosmosTopology, services map[string]*mcs.Facts, now time.Time, expiry time.Duration) mcs.Input {
	in := mcs.Input{Topology: t.Name, Services: t.Spec.Services, Domain: t.Spec.DNS.Domain, Now: now, Expiry: expiry}
	for _, c := range t.Spec.Clusters {
		in.Clusters = append(in.Clusters, mcs.Cluster{Name: c.Name, GlobalCIDRs: c.Network.GlobalCIDRs, Facts: services[c.Name]})
	}
	return in
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
		crd.Labels = map[string]string{desired.LabelManagedBy: desired.ManagedBy}
		objs = append(objs, crd)
	}
	if _, err := apply.Cluster(ctx, c, "", objs, false); err != nil {
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
