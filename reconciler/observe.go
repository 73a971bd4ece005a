package reconciler

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Observe reads the facts of one cluster: its Node objects and the
// NodeConfigs in force (for the gateway). It only reads.
func Observe(ctx context.Context, c client.Client) (netplan.ClusterFacts, error) {
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return netplan.ClusterFacts{}, fmt.Errorf("list nodes: %w", err)
	}
	var ncs v1alpha1.NodeConfigList
	if err := c.List(ctx, &ncs, client.MatchingLabels{desired.LabelManagedBy: desired.ManagedBy}); err != nil && !meta.IsNoMatchError(err) {
		return netplan.ClusterFacts{}, fmt.Errorf("list NodeConfigs: %w", err)
	}
	return desired.FactsOf(nodes.Items, ncs.Items), nil
}

// ObserveAll reads the facts of every cluster and fails, naming each, when
// any cannot be reached or read (the CLI's render, facts and diff need them
// all; the controller's pass instead carries known facts over).
func ObserveAll(ctx context.Context, clusters []Cluster) (netplan.Facts, error) {
	facts := netplan.Facts{}
	var errs []error
	for _, c := range clusters {
		if c.Err != nil {
			errs = append(errs, c.Err)
			continue
		}
		f, err := Observe(ctx, c.Client)
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", c.Name, err))
			continue
		}
		facts[c.Name] = f
	}
	return facts, errors.Join(errs...)
}
