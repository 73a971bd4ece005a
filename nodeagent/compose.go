package nodeagent

import (
	"fmt"

	"kosmos.io/kosmos/internal/peering"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Composed is a NodeConfig made complete from the shared objects it names.
type Composed struct {
	// Spec is what the kernel is to hold.
	Spec *v1alpha1.NodeConfigSpec
	// Peers are the ClusterPeers objects it was derived from, with their
	// generations (for status).
	Peers []v1alpha1.AppliedPeers
	// Used are those objects (the prev of the next ComposeAfter).
	Used []v1alpha1.ClusterPeers
	// Held names the remote clusters whose shard set is incomplete: they
	// are derived from the objects used before (peering.Settle).
	Held []string
	// Groups are the gateway candidate lists the node may send through
	// (gateway HA: what its agent probes).
	Groups []peering.Group
	// Transit is how the node forwards its cluster's traffic to other
	// clusters when it is a gateway candidate (peering.TransitOf).
	Transit peering.Transit
}

// Compose makes a NodeConfig complete: a NodeConfig with spec.peers gets the
// entries its cluster's ClusterPeers imply (package peering); one without is
// complete already (the contract of the earlier release) and is returned as
// it is. Shared objects that cannot be read are a *RefusedError: the config
// is refused whole. It is pure.
func Compose(nc *v1alpha1.NodeConfig, all []v1alpha1.ClusterPeers) (Composed, error) {
	return ComposeWith(nc, all, nil, peering.Choice{})
}

// ComposeAfter is Compose for an agent that composed before: prev is the
// previous composition's Used. A remote cluster whose shard set is
// incomplete (a shard not written or not seen yet) is derived from the
// shards used before (peering.Settle), so a late shard withdraws no route.
func ComposeAfter(nc *v1alpha1.NodeConfig, all, prev []v1alpha1.ClusterPeers) (Composed, error) {
	return ComposeWith(nc, all, prev, peering.Choice{})
}

// ComposeWith is ComposeAfter with the gateway candidates the agent
// currently sends through (gateway HA; peering.DeriveWith).
func ComposeWith(nc *v1alpha1.NodeConfig, all, prev []v1alpha1.ClusterPeers, choice peering.Choice) (Composed, error) {
	if nc.Spec.Peers == nil {
		return Composed{Spec: &nc.Spec}, nil
	}
	used, held := peering.Settle(prev, peering.Select(&nc.Spec, all))
	full, err := peering.DeriveWith(&nc.Spec, used, choice)
	if err != nil {
		return Composed{}, &RefusedError{Spec: &nc.Spec, Err: err}
	}
	transit, err := peering.TransitOf(&nc.Spec, used, choice)
	if err != nil {
		return Composed{}, &RefusedError{Spec: &nc.Spec, Err: err}
	}
	c := Composed{Spec: &full, Transit: transit, Peers: make([]v1alpha1.AppliedPeers, 0, len(used)), Used: used, Held: held, Groups: peering.Groups(&nc.Spec, used)}
	for _, p := range used {
		c.Peers = append(c.Peers, v1alpha1.AppliedPeers{Name: p.Name, Generation: p.Generation})
	}
	return c, nil
}

// RefusedError is a config refused before it could be made complete (its
// shared objects are invalid). Like a config that fails validation, it is
// refused whole and the kernel keeps its last good state; Spec is the
// refused NodeConfig's own spec, for the report.
type RefusedError struct {
	Spec *v1alpha1.NodeConfigSpec
	Err  error
}

func (e *RefusedError) Error() string { return fmt.Sprintf("NodeConfig refused: %v", e.Err) }

func (e *RefusedError) Unwrap() error { return e.Err }
