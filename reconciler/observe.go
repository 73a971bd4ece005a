package reconciler

import (
	"context"
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
