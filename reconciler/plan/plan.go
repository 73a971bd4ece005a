// Package plan is the one planning entry point of Kosmos: a pure function
// from a topology, the facts observed in its clusters and the time to the
// complete desired state of every cluster. `kosmos render`, `kosmos diff`
// (live and offline) and every apply (the CLI's and the controller's) call
// Compute, so what a preview shows is what is written.
//
// # What it joins
//
// Two planners each own a part of the state:
//
//   - reconciler/desired (with the network planner reconciler/netplan): the
//     kosmos-system namespace, every node's NodeConfig, and in the host the
//     Cluster and DistributionPolicy objects;
//   - reconciler/mcs: the kosmos-dns ConfigMap, the ServiceExports written
//     for spec.services, ServiceImports, the Services derived from
//     ClusterSetIP imports (no ClusterIP: the API server allocates it) and
//     their EndpointSlices, and the status conditions of exports and
//     imports.
//
// Compute merges them per cluster, sorted by kind, namespace and name, and
// says what it had to leave out for lack of facts (Unobserved), so a
// preview without cluster access is honest about its gaps.
//
// # Facts
//
// Facts are everything the plan reads, by cluster: the network facts
// (nodes, addresses, pod CIDRs, readiness, the gateway in force) inlined,
// and the multi-cluster service facts under "services". Files written by
// older versions (network facts only) still load.
package plan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/reconciler/mcs"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// ClusterFacts are what the plan reads of one cluster.
type ClusterFacts struct {
	// The network facts, inlined (the format `kosmos facts` always wrote).
	netplan.ClusterFacts
	// Services are the multi-cluster service facts; nil when not observed.
	Services *mcs.Facts `json:"services,omitempty"`
}

// Facts are the facts of every cluster, by name. A cluster missing here was
// not observed: it contributes no nodes and no services.
type Facts map[string]ClusterFacts

// Network returns the network planner's view of the facts.
func (f Facts) Network() netplan.Facts {
	out := make(netplan.Facts, len(f))
	for name, cf := range f {
		out[name] = cf.ClusterFacts
	}
	return out
}

// MaxFactsSize is the largest facts file read: facts grow with nodes and
// services (a few hundred bytes each), so thousands of nodes fit many times.
const MaxFactsSize = 8 << 20

// LoadFacts reads facts captured by `kosmos facts` (strictly: an unknown
// field is an error). Data over MaxFactsSize is refused, and so is any YAML
// alias: `kosmos facts` writes none, and aliases let a small file expand
// beyond any size limit.
func LoadFacts(data []byte) (Facts, error) {
	if len(data) > MaxFactsSize {
		return nil, fmt.Errorf("facts: more than %d MiB", MaxFactsSize>>20)
	}
	if err := refuseAliases(data); err != nil {
		return nil, fmt.Errorf("facts: %w", err)
	}
	var f Facts
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("facts: %w", err)
	}
	return f, nil
}

// Input is everything the plan depends on.
type Input struct {
	// Topology, valid and defaulted.
	Topology *v1alpha1.KosmosTopology
	// Facts observed (or carried over), by cluster.
	Facts Facts
	// Now is the time of the pass; Started when the reconciler started
	// (default Now). Endpoints of a cluster that stopped answering stay
	// imported until EndpointExpiry has passed since it was last observed
	// (zero keeps them).
	Now, Started   time.Time
	EndpointExpiry time.Duration
}

// Cluster is the desired state of one cluster.
type Cluster struct {
	Name string
	// Objects Kosmos wants in the cluster, sorted by kind, namespace, name.
	Objects []client.Object
	// Exports and Imports are the statuses the cluster's ServiceExports and
	// ServiceImports should carry (written after the objects).
	Exports []mcs.ExportStatus
	Imports []mcs.Import
	// Unobserved, when set, says what the plan left out of this cluster
	// (and of its peers' view of it) for lack of facts.
	Unobserved string
}

// Plan is the desired state of every cluster, in topology order.
type Plan struct {
	Clusters []Cluster
	// Problems the planners reported (address collisions, no gateway).
	Problems []string
}

// Cluster returns the plan of the named cluster, or nil.
func (p *Plan) Cluster(name string) *Cluster {
	for i := range p.Clusters {
		if p.Clusters[i].Name == name {
			return &p.Clusters[i]
		}
	}
	return nil
}

// Compute plans every cluster. It is pure.
func Compute(in Input) Plan {
	t := in.Topology
	if in.Started.IsZero() {
		in.Started = in.Now
	}
	st := desired.ComputeAt(t, in.Facts.Network(), in.Now)
	mi := mcs.Input{Topology: t.Name, Services: t.Spec.Services, Domain: t.Spec.DNS.Domain, Now: in.Now, Expiry: in.EndpointExpiry, Started: in.Started}
	for _, c := range t.Spec.Clusters {
		mi.Clusters = append(mi.Clusters, mcs.Cluster{Name: c.Name, GlobalCIDRs: c.Network.GlobalCIDRs, Facts: in.Facts[c.Name].Services})
	}
	ms := mcs.Compute(mi)
	out := Plan{Problems: st.Problems}
	for _, co := range st.Clusters {
		c := Cluster{
			Name:    co.Cluster,
			Objects: append(slices.Clone(co.Objects), ms.Objects[co.Cluster]...),
			Exports: ms.Exports[co.Cluster],
			Imports: ms.Imports[co.Cluster],
		}
		sortObjects(c.Objects)
		c.Unobserved = unobserved(in.Facts, co.Cluster)
		out.Clusters = append(out.Clusters, c)
	}
	return out
}

// unobserved says what a cluster's plan lacks for want of its facts.
func unobserved(f Facts, name string) string {
	cf, ok := f[name]
	var missing []string
	if !ok {
		missing = append(missing, "its nodes (NodeConfigs here, and its peers' routes to it)")
	}
	if !ok || cf.Services == nil {
		missing = append(missing, "its services (ServiceExports for spec.services, and what it exports to the others)")
	}
	if len(missing) == 0 {
		return ""
	}
	return "not observed: left out " + strings.Join(missing, " and ")
}

// sortObjects orders objects by kind, namespace and name.
func sortObjects(objs []client.Object) {
	slices.SortFunc(objs, func(a, b client.Object) int {
		return cmp.Or(cmp.Compare(a.GetObjectKind().GroupVersionKind().Kind, b.GetObjectKind().GroupVersionKind().Kind),
			cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	})
}
