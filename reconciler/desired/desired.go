// Package desired computes, as a pure function of a topology and the facts
// observed in its clusters, every object Kosmos wants in every cluster:
// the kosmos-system namespace, the NodeConfigs of the ClusterLink planner
// and the ClusterPeers every cluster holds of every other, and in the host the Cluster and DistributionPolicy objects. Every object
// carries the ownership labels, so prune can tell what Kosmos owns.
package desired

import (
	"cmp"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// ClusterObjects are the desired objects of one cluster, sorted by kind and
// name.
type ClusterObjects struct {
	Cluster string
	Objects []client.Object
}

// State is the desired state of every cluster.
type State struct {
	Clusters []ClusterObjects
	// Problems the network planner reported (collisions, no gateway).
	Problems []string
}

// Compute plans every cluster's objects. t must be valid and defaulted.
func Compute(t *v1alpha1.KosmosTopology, facts netplan.Facts) State {
	return ComputeAt(t, facts, time.Time{})
}

// ComputeAt is Compute at time now (see netplan.ComputeAt).
func ComputeAt(t *v1alpha1.KosmosTopology, facts netplan.Facts, now time.Time) State {
	labels := map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelTopology: t.Name}
	meta := func(name string) metav1.ObjectMeta {
		l := make(map[string]string, len(labels)+1)
		for k, v := range labels {
			l[k] = v
		}
		return metav1.ObjectMeta{Name: name, Labels: l}
	}
	plan := netplan.ComputeAt(&t.Spec, facts, now)
	out := State{Problems: plan.Problems}
	shared := sharedObjects(plan, meta)
	host := t.Spec.Host()
	for i := range t.Spec.Clusters {
		c := &t.Spec.Clusters[i]
		co := ClusterObjects{Cluster: c.Name}
		co.Objects = append(co.Objects, &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: meta(v1alpha1.SystemNamespace)})
		if cp := plan.Cluster(c.Name); cp != nil {
			for _, nc := range cp.Configs {
				obj := &v1alpha1.NodeConfig{TypeMeta: typeMeta(v1alpha1.KindNodeConfig), ObjectMeta: meta(nc.Name), Spec: nc.Spec}
				if nc.Name == cp.Gateway {
					obj.Labels[v1alpha1.LabelRole] = v1alpha1.RoleGateway
				}
				if obj.Spec.Peers != nil {
					pe := *obj.Spec.Peers
					pe.Topology = t.Name
					obj.Spec.Peers = &pe
				}
				co.Objects = append(co.Objects, obj)
			}
			co.Objects = append(co.Objects, peersFor(c.Name, shared)...)
			if facts[c.Name].IPAM == v1alpha1.IPAMCalico {
				co.Objects = append(co.Objects, calicoPools(c.Name, plan, func(n string) map[string]string { return meta(n).Labels })...)
			}
		}
		if c.Role == v1alpha1.RoleHost {
			co.Objects = append(co.Objects, hostObjects(t, host, meta)...)
		}
		slices.SortFunc(co.Objects, func(a, b client.Object) int {
			return cmp.Or(cmp.Compare(a.GetObjectKind().GroupVersionKind().Kind, b.GetObjectKind().GroupVersionKind().Kind), cmp.Compare(a.GetName(), b.GetName()))
		})
		out.Clusters = append(out.Clusters, co)
	}
	return out
}

// sharedObjects labels every cluster's ClusterPeers shards once. The same
// objects go into every other cluster: they are shared, read-only.
func sharedObjects(plan *netplan.Plan, meta func(string) metav1.ObjectMeta) map[string][]client.Object {
	out := map[string][]client.Object{}
	for _, cp := range plan.Clusters {
		for _, p := range cp.Peers {
			obj := &v1alpha1.ClusterPeers{TypeMeta: typeMeta(v1alpha1.KindClusterPeers), ObjectMeta: meta(p.Name), Spec: p.Spec}
			out[cp.Name] = append(out[cp.Name], obj)
		}
	}
	return out
}

// peersFor returns the ClusterPeers a cluster holds: those of every other
// planned cluster.
func peersFor(cluster string, shared map[string][]client.Object) []client.Object {
	var out []client.Object
	for _, name := range slices.Sorted(maps.Keys(shared)) {
		if name != cluster {
			out = append(out, shared[name]...)
		}
	}
	return out
}

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: kind}
}

// hostObjects are the Cluster objects of the members and the policies.
func hostObjects(t *v1alpha1.KosmosTopology, host *v1alpha1.ClusterSpec, meta func(string) metav1.ObjectMeta) []client.Object {
	var objs []client.Object
	for i := range t.Spec.Clusters {
		c := &t.Spec.Clusters[i]
		if c.Role != v1alpha1.RoleMember {
			continue
		}
		spec := v1alpha1.ClusterObjectSpec{
			APIEndpoint: c.APIEndpoint, HostAPIEndpoint: host.APIEndpoint,
			Region: c.Region, Zone: c.Zone, Labels: c.Labels, Tree: c.Tree, GlobalCIDRs: c.Network.GlobalCIDRs,
			PodCIDRs:     c.Network.PodCIDRs,
			ServiceCIDRs: c.Network.ServiceCIDRs, HostServiceCIDRs: host.Network.ServiceCIDRs, HostGlobalCIDRs: host.Network.GlobalCIDRs,
		}
		// Only the tree's own kubeconfig reference: the reconciler's never
		// reaches the tree.
		if ref := c.TreeKubeconfig(); ref != nil {
			spec.Kubeconfig = *ref
			if spec.Kubeconfig.Namespace == "" {
				spec.Kubeconfig.Namespace = v1alpha1.SystemNamespace
			}
		}
		objs = append(objs, &v1alpha1.Cluster{TypeMeta: typeMeta(v1alpha1.KindCluster), ObjectMeta: meta(c.Name), Spec: spec})
	}
	for _, p := range t.Spec.DistributionPolicies {
		pl := *p.Placement.DeepCopy()
		if len(pl.Clusters) == 0 {
			for _, c := range t.Spec.Clusters {
				if (c.Role == v1alpha1.RoleMember && c.TreeEnabled()) || (c.Role == v1alpha1.RoleHost && pl.IncludeHost) {
					pl.Clusters = append(pl.Clusters, v1alpha1.ClusterPlacement{Name: c.Name, Weight: ptr(int32(1))})
				}
			}
		}
		spec := v1alpha1.DistributionPolicyObjectSpec{Selector: *p.Selector.DeepCopy(), Placement: pl, HostCluster: host.Name}
		for _, cp := range pl.Clusters {
			if c := t.Spec.Cluster(cp.Name); c != nil {
				spec.Domains = append(spec.Domains, v1alpha1.ClusterDomain{Cluster: c.Name, Region: c.Region, Zone: c.Zone})
			}
		}
		objs = append(objs, &v1alpha1.DistributionPolicy{TypeMeta: typeMeta(v1alpha1.KindDistributionPolicy), ObjectMeta: meta(p.Name), Spec: spec})
	}
	return objs
}

func ptr[T any](v T) *T { return &v }
