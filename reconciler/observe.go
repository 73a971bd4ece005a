package reconciler

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/reconciler/plan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Observe reads the facts of one cluster: its Node objects, the
// NodeConfigs in force (for the gateway) and, as ipam says, the pod ranges
// its CNI records (see desired/ipam.go). It only reads.
func Observe(ctx context.Context, c client.Client, ipam v1alpha1.IPAMSource) (netplan.ClusterFacts, error) {
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return netplan.ClusterFacts{}, fmt.Errorf("list nodes: %w", err)
	}
	var ncs v1alpha1.NodeConfigList
	if err := c.List(ctx, &ncs, client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy}); err != nil && !meta.IsNoMatchError(err) {
		return netplan.ClusterFacts{}, fmt.Errorf("list NodeConfigs: %w", err)
	}
	f := desired.FactsOf(nodes.Items, ncs.Items)
	cni, err := readCNI(ctx, c, ipam)
	if err != nil {
		return netplan.ClusterFacts{}, err
	}
	if err := desired.ApplyIPAM(&f, desired.PickIPAM(ipam, cni), cni); err != nil {
		return netplan.ClusterFacts{}, err
	}
	return f, nil
}

// ObserveFacts reads what the plan needs (network and service facts) from
// every cluster it can reach. errs, by cluster, say why the others could
// not be read. It only reads.
func ObserveFacts(ctx context.Context, t *v1alpha1.KosmosTopology, clusters []Cluster) (plan.Facts, map[string]error) {
	p := &prepared{clusters: clusters, errs: make([]error, len(clusters)), facts: plan.Facts{}, observed: map[string]bool{}}
	opts := PassOptions{}
	opts.defaults()
	p.observe(ctx, t, opts, false, time.Now())
	errs := map[string]error{}
	for i, c := range clusters {
		if p.errs[i] != nil {
			errs[c.Name] = p.errs[i]
		}
	}
	return p.facts, errs
}
