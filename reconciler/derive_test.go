package reconciler_test

import (
	"context"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/nodeagent"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// derived is what the agent of a node derives from its NodeConfig and the
// ClusterPeers of its cluster (what its kernel holds); ok is false when the
// NodeConfig cannot be read.
func derived(t *testing.T, c client.Client, node string) (v1alpha1.NodeConfigSpec, bool) {
	t.Helper()
	ctx := context.Background()
	var nc v1alpha1.NodeConfig
	if err := c.Get(ctx, client.ObjectKey{Name: node}, &nc); err != nil {
		return v1alpha1.NodeConfigSpec{}, false
	}
	return derivedOf(t, c, &nc), true
}

// derivedOf derives one NodeConfig as its agent does.
func derivedOf(t *testing.T, c client.Client, nc *v1alpha1.NodeConfig) v1alpha1.NodeConfigSpec {
	t.Helper()
	var peers v1alpha1.ClusterPeersList
	if err := c.List(context.Background(), &peers); err != nil {
		t.Fatalf("list ClusterPeers: %v", err)
	}
	full, err := nodeagent.Compose(nc, peers.Items)
	if err != nil {
		t.Fatalf("derive %s: %v", nc.Name, err)
	}
	return *full.Spec
}
