package policies

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"kosmos.io/kosmos/scheduler/split"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Policy is one DistributionPolicy, parsed once.
type Policy struct {
	// Name of the DistributionPolicy object.
	Name string
	// Split is what the replica split needs of the policy.
	Split split.Policy
	// Host names the host's own nodes' cluster; empty: the plugin's default.
	Host string
	// Required: nodes that would break the policy are rejected (else the
	// policy only scores).
	Required bool

	ns       string
	selector labels.Selector
	owner    *v1alpha1.OwnerSelector
}

// Parse reads a DistributionPolicy object. It fails only when the label
// selector does not compile.
func Parse(dp *v1alpha1.DistributionPolicy) (*Policy, error) {
	sel := labels.Everything()
	if dp.Spec.Selector.LabelSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(dp.Spec.Selector.LabelSelector)
		if err != nil {
			return nil, fmt.Errorf("DistributionPolicy %s: label selector: %w", dp.Name, err)
		}
		sel = s
	}
	return &Policy{
		Name: dp.Name, Split: split.FromObject(dp), Host: dp.Spec.HostCluster,
		Required: dp.Spec.Placement.Mode != v1alpha1.PlacementPreferred,
		ns:       dp.Spec.Selector.Namespace, selector: sel, owner: dp.Spec.Selector.Owner,
	}, nil
}

// SendsToMembers says whether the policy may place pods on member clusters
// (so its pods tolerate the virtual-node taint).
func (pol *Policy) SendsToMembers() bool {
	return slices.ContainsFunc(pol.Split.Targets, func(t v1alpha1.ClusterPlacement) bool { return t.Name != pol.Host })
}

// ClusterOf is the cluster a node belongs to: a virtual node's label, else
// the host.
func ClusterOf(n *corev1.Node, host string) string {
	if c, ok := n.Labels[v1alpha1.LabelCluster]; ok {
		return c
	}
	return host
}
