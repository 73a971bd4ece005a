package v1alpha1

// Defaults of the topology, from the original ClusterLink design.
const (
	DefaultBridgeVNI   = 54
	DefaultBridgePort  = 4876
	DefaultLocalVNI    = 55
	DefaultLocalPort   = 4877
	DefaultBridge6VNI  = 64
	DefaultBridge6Port = 4866
	DefaultLocal6VNI   = 65
	DefaultLocal6Port  = 4867

	DefaultBridgeCIDR4 = "220.0.0.0/8"
	DefaultBridgeCIDR6 = "9470::/16"
	DefaultLocalCIDR4  = "210.0.0.0/8"
	DefaultLocalCIDR6  = "9480::/16"

	DefaultDNSDomain = "clusterset.local"
	NICAuto          = "auto"
	DefaultSecretKey = "kubeconfig"
)

// SetDefaults fills every unset field of t that has a default. It is the one
// place defaults live: the loader, the reconciler and `kosmos render` all call
// it, so what they show is what runs. It is idempotent.
func SetDefaults(t *KosmosTopology) {
	s := &t.Spec
	setNetworkDefaults(&s.Network)
	for i := range s.Clusters {
		setClusterDefaults(&s.Clusters[i])
	}
	for i := range s.DistributionPolicies {
		p := &s.DistributionPolicies[i].Placement
		if p.Mode == "" {
			p.Mode = PlacementRequired
		}
		if p.Spread != nil && p.Spread.MaxSkew == 0 {
			p.Spread.MaxSkew = 1
		}
	}
	if s.DNS.Domain == "" {
		s.DNS.Domain = DefaultDNSDomain
	}
}

func setNetworkDefaults(n *NetworkSpec) {
	dev := func(d *VXLANDevice, vni, port int32) {
		if d.VNI == 0 {
			d.VNI = vni
		}
		if d.Port == 0 {
			d.Port = port
		}
	}
	dev(&n.VXLAN.Bridge, DefaultBridgeVNI, DefaultBridgePort)
	dev(&n.VXLAN.Local, DefaultLocalVNI, DefaultLocalPort)
	dev(&n.VXLAN.Bridge6, DefaultBridge6VNI, DefaultBridge6Port)
	dev(&n.VXLAN.Local6, DefaultLocal6VNI, DefaultLocal6Port)
	cidr := func(c *DualCIDR, v4, v6 string) {
		if c.IPv4 == "" {
			c.IPv4 = v4
		}
		if c.IPv6 == "" {
			c.IPv6 = v6
		}
	}
	cidr(&n.BridgeCIDRs, DefaultBridgeCIDR4, DefaultBridgeCIDR6)
	cidr(&n.LocalCIDRs, DefaultLocalCIDR4, DefaultLocalCIDR6)
	if n.Encryption == "" {
		n.Encryption = EncryptionNone
	}
}

func setClusterDefaults(c *ClusterSpec) {
	for _, ref := range []*SecretKeyRef{c.Kubeconfig.SecretRef, c.Kubeconfig.TreeSecretRef} {
		if ref != nil && ref.Key == "" {
			ref.Key = DefaultSecretKey
		}
	}
	n := &c.Network
	if n.Enabled == nil {
		n.Enabled = ptr(true)
	}
	if n.Mode == "" {
		n.Mode = ModeP2P
	}
	if n.IPFamily == "" {
		n.IPFamily = IPv4
	}
	if n.Gateway.Replicas == 0 {
		n.Gateway.Replicas = 1
	}
	if n.NIC == "" {
		n.NIC = NICAuto
	}
	if n.IPAM == "" {
		n.IPAM = IPAMAuto
	}
	if c.Tree.Enabled == nil {
		c.Tree.Enabled = ptr(c.Role == RoleMember)
	}
	if c.Tree.Mode == "" {
		c.Tree.Mode = TreeAggregate
	}
}

func ptr[T any](v T) *T { return &v }

// NetworkEnabled reports whether the cluster joins ClusterLink (defaulted or not).
func (c *ClusterSpec) NetworkEnabled() bool { return c.Network.Enabled == nil || *c.Network.Enabled }

// TreeEnabled reports whether the cluster appears as nodes of the host,
// applying the default (members yes, host no) when the field is unset.
func (c *ClusterSpec) TreeEnabled() bool {
	if c.Tree.Enabled == nil {
		return c.Role == RoleMember
	}
	return *c.Tree.Enabled
}

// TreeKubeconfig is the kubeconfig Secret the tree reaches this member
// with: treeSecretRef, or secretRef when that is unset (the two components
// then share one identity; see SharesTreeIdentity). Nil when neither is set.
func (c *ClusterSpec) TreeKubeconfig() *SecretKeyRef {
	if c.Kubeconfig.TreeSecretRef != nil {
		return c.Kubeconfig.TreeSecretRef
	}
	return c.Kubeconfig.SecretRef
}

// SharesTreeIdentity reports a member whose tree is enabled but which names
// no treeSecretRef: the tree then uses the reconciler's kubeconfig Secret,
// so each component holds the other's rights in the member.
func (c *ClusterSpec) SharesTreeIdentity() bool {
	return c.Role == RoleMember && c.TreeEnabled() && c.Kubeconfig.TreeSecretRef == nil && c.Kubeconfig.SecretRef != nil
}

// Host returns the host cluster, or nil when there is none.
func (s *TopologySpec) Host() *ClusterSpec {
	for i := range s.Clusters {
		if s.Clusters[i].Role == RoleHost {
			return &s.Clusters[i]
		}
	}
	return nil
}

// Cluster returns the cluster of that name, or nil.
func (s *TopologySpec) Cluster(name string) *ClusterSpec {
	for i := range s.Clusters {
		if s.Clusters[i].Name == name {
			return &s.Clusters[i]
		}
	}
	return nil
}
