package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KindKosmosTopology is the kind of the user's topology document.
const KindKosmosTopology = "KosmosTopology"

// KosmosTopology describes every cluster Kosmos joins, how their networks link,
// how workloads spread over them and which services they share. It is the one
// file kept in git; the reconciler turns it into desired state in every cluster.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=ktopo,categories=kosmos
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Clusters",type=integer,JSONPath=`.status.clusterCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type KosmosTopology struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata; name identifies the topology and is stamped on
	// every object Kosmos writes (label kosmos.io/topology).
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired topology.
	Spec TopologySpec `json:"spec"`

	// Status is written by the reconciler when the topology lives in a cluster.
	// +optional
	Status TopologyStatus `json:"status,omitempty"`
}

// KosmosTopologyList is a list of KosmosTopology objects.
//
// +kubebuilder:object:root=true
type KosmosTopologyList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the topologies.
	Items []KosmosTopology `json:"items"`
}

func init() { objectTypes = append(objectTypes, &KosmosTopology{}, &KosmosTopologyList{}) }

// TopologySpec is the whole desired state of a Kosmos installation.
type TopologySpec struct {
	// Clusters are the Kubernetes clusters Kosmos joins: exactly one host and any
	// number of members.
	// +kubebuilder:validation:MinItems=1
	Clusters []ClusterSpec `json:"clusters"`

	// Network holds the ClusterLink settings shared by every cluster: VXLAN
	// devices and the address ranges of the tunnel devices.
	// +optional
	Network NetworkSpec `json:"network,omitempty"`

	// DistributionPolicies say how the scheduler spreads the replicas of matching
	// pods over clusters.
	// +optional
	DistributionPolicies []DistributionPolicySpec `json:"distributionPolicies,omitempty"`

	// Services are exported to every cluster (Multi-Cluster Services API), in
	// addition to the ServiceExport objects users create themselves.
	// +optional
	Services []ServiceSpec `json:"services,omitempty"`

	// DNS configures multi-cluster service discovery.
	// +optional
	DNS DNSSpec `json:"dns,omitempty"`
}

// ClusterRole says whether a cluster is the host or a member.
// +kubebuilder:validation:Enum=host;member
type ClusterRole string

// Cluster roles.
const (
	RoleHost   ClusterRole = "host"
	RoleMember ClusterRole = "member"
)

// ClusterSpec describes one cluster.
type ClusterSpec struct {
	// Name identifies the cluster; a DNS-1123 label, unique in the topology.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// Role is host for the one cluster that runs the control plane (and sees
	// members as nodes), member for every other.
	Role ClusterRole `json:"role"`

	// Kubeconfig says how to reach the cluster's API server. It only ever
	// references a credential kept elsewhere; it never holds one.
	Kubeconfig KubeconfigRef `json:"kubeconfig"`

	// APIEndpoint is the https URL at which pods of other clusters reach this
	// cluster's API server (used by pods that ClusterTree runs in members).
	// +optional
	// +kubebuilder:validation:Pattern=`^https://`
	APIEndpoint string `json:"apiEndpoint,omitempty"`

	// Region is the cluster's region (topology.kubernetes.io/region on its
	// virtual nodes; a spread domain for distribution policies).
	// +optional
	Region string `json:"region,omitempty"`

	// Zone is the cluster's zone (topology.kubernetes.io/zone on its virtual
	// nodes; a spread domain for distribution policies).
	// +optional
	Zone string `json:"zone,omitempty"`

	// Labels are free labels of the cluster, copied onto its virtual nodes.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Network is the cluster's ClusterLink configuration.
	// +optional
	Network ClusterNetwork `json:"network,omitempty"`

	// Tree is the cluster's ClusterTree configuration: whether and how it
	// appears as nodes of the host.
	// +optional
	Tree TreeSpec `json:"tree,omitempty"`
}

// KubeconfigRef references the credentials for one cluster. At least one of
// secretRef (used by the in-cluster controller) and context (used by the CLI)
// is set. In a member, the reconciler and the tree each have their own
// identity: secretRef is the reconciler's, treeSecretRef the tree's.
type KubeconfigRef struct {
	// SecretRef names a Secret in the host cluster whose key holds a
	// kubeconfig for this cluster, used by the reconciler (ClusterLink and
	// multi-cluster service objects). In a member it should carry a token
	// of the kosmos-host-reconciler ServiceAccount (kustomize/base/host-access).
	// +optional
	SecretRef *SecretKeyRef `json:"secretRef,omitempty"`

	// TreeSecretRef names a Secret in the host cluster whose key holds a
	// kubeconfig for this member, used by the tree (pods and their
	// dependencies); it should carry a token of the member's
	// kosmos-host-tree ServiceAccount. Keep it in a namespace the
	// reconciler cannot read: the shipped manifests make kosmos-tree for
	// it. Only this reference is written into the member's Cluster object. Unset on a member with the tree enabled,
	// the tree falls back to secretRef (one identity for both components,
	// as before this field existed) and the reconciler logs a warning;
	// set it so that neither component holds the other's rights. Ignored
	// for the host and for members whose tree is disabled.
	// +optional
	TreeSecretRef *SecretKeyRef `json:"treeSecretRef,omitempty"`

	// Context is the name of a context in the local kubeconfig, used by the
	// kosmos CLI (diff, apply, up).
	// +optional
	Context string `json:"context,omitempty"`
}

// SecretKeyRef points at one key of a Secret.
type SecretKeyRef struct {
	// Name of the Secret.
	Name string `json:"name"`

	// Namespace of the Secret; defaults to the namespace Kosmos runs in.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Key within the Secret that holds the kubeconfig.
	// +optional
	Key string `json:"key,omitempty"`
}

// NetworkMode is how a cluster's nodes reach other clusters.
// +kubebuilder:validation:Enum=P2P;Gateway
type NetworkMode string

// Network modes.
const (
	// ModeP2P: every node tunnels straight to the remote nodes.
	ModeP2P NetworkMode = "P2P"
	// ModeGateway: one elected node per cluster carries all cross-cluster traffic.
	ModeGateway NetworkMode = "Gateway"
)

// IPAMSource is where a cluster's per-node pod ranges are read.
// +kubebuilder:validation:Enum=Auto;NodeSpec;Calico;Cilium
type IPAMSource string

// IPAM sources.
const (
	// IPAMAuto picks Calico, Cilium or NodeSpec by what the cluster holds.
	IPAMAuto IPAMSource = "Auto"
	// IPAMNodeSpec reads Node spec.podCIDRs (host-local IPAM, flannel,
	// Cilium in Kubernetes IPAM mode).
	IPAMNodeSpec IPAMSource = "NodeSpec"
	// IPAMCalico reads Calico's confirmed BlockAffinities.
	IPAMCalico IPAMSource = "Calico"
	// IPAMCilium reads CiliumNode spec.ipam.podCIDRs (cluster-pool IPAM).
	IPAMCilium IPAMSource = "Cilium"
)

// IPFamily is the IP family (or families) a cluster's network uses.
// +kubebuilder:validation:Enum=IPv4;IPv6;DualStack
type IPFamily string

// IP families.
const (
	IPv4      IPFamily = "IPv4"
	IPv6      IPFamily = "IPv6"
	DualStack IPFamily = "DualStack"
)

// ClusterNetwork is one cluster's ClusterLink configuration.
type ClusterNetwork struct {
	// Enabled joins the cluster's pod network to the others. Defaults to true.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// Mode is P2P (node to node) or Gateway (through one elected node).
	// Defaults to P2P.
	// +optional
	Mode NetworkMode `json:"mode,omitempty"`

	// IPFamily is IPv4, IPv6 or DualStack; every CIDR of the cluster must be of
	// a family it names. Defaults to IPv4.
	// +optional
	IPFamily IPFamily `json:"ipFamily,omitempty"`

	// PodCIDRs are the cluster's pod address ranges.
	// +optional
	PodCIDRs []string `json:"podCIDRs,omitempty"`

	// ServiceCIDRs are the cluster's service address ranges.
	// +optional
	ServiceCIDRs []string `json:"serviceCIDRs,omitempty"`

	// GlobalCIDRs maps a real pod or service CIDR of this cluster onto a
	// globally unique CIDR of the same size. Other clusters reach the mapped
	// range through its global addresses (1:1 NAT at the cluster's edge), so
	// clusters whose real ranges overlap can still talk.
	// +optional
	GlobalCIDRs map[string]string `json:"globalCIDRs,omitempty"`

	// Gateway selects the gateway node in Gateway mode.
	// +optional
	Gateway GatewaySpec `json:"gateway,omitempty"`

	// IPAM says where the pod ranges of each node are read: Calico (the
	// confirmed block affinities of crd.projectcalico.org/v1), Cilium
	// (CiliumNode spec.ipam.podCIDRs), NodeSpec (Node spec.podCIDRs), or
	// Auto: Calico when the cluster has block affinities or IPPools, else
	// Cilium when it has CiliumNodes with pod ranges, else NodeSpec.
	// Every range read must lie inside podCIDRs. Defaults to Auto.
	// +optional
	IPAM IPAMSource `json:"ipam,omitempty"`

	// NIC is the network interface that carries the tunnels: auto (the one
	// holding the node's InternalIP), an interface name, cidr:<CIDR> (the
	// interface holding an address in the CIDR; the one holding the
	// InternalIP first, else the first by name) or can-reach:<IP> (the
	// interface the route to the address leaves through). Defaults to auto.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	NIC string `json:"nic,omitempty"`

	// Encryption overrides spec.network.encryption for this cluster: a pair
	// of clusters is encrypted when either asks. Empty inherits it.
	// +optional
	Encryption Encryption `json:"encryption,omitempty"`
}

// GatewaySpec selects the gateway node of a Gateway-mode cluster.
type GatewaySpec struct {
	// NodeSelector limits the gateway candidates to nodes with these labels;
	// empty means every Ready node is a candidate.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Replicas is how many candidates are kept ready to take over when the
	// gateway fails; traffic always flows through one of them. Defaults to 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Replicas int32 `json:"replicas,omitempty"`
}

// NetworkSpec holds ClusterLink settings shared by all clusters.
type NetworkSpec struct {
	// VXLAN configures the tunnel devices.
	// +optional
	VXLAN VXLANSpec `json:"vxlan,omitempty"`

	// BridgeCIDRs are the address ranges of the cross-cluster devices
	// (vx-bridge, vx-bridge-6). A device keeps the host bits of its node's
	// underlay address. Defaults to 220.0.0.0/8 and 9470::/16.
	// +optional
	BridgeCIDRs DualCIDR `json:"bridgeCIDRs,omitempty"`

	// LocalCIDRs are the address ranges of the node-to-gateway devices
	// (vx-local, vx-local-6). Defaults to 210.0.0.0/8 and 9480::/16.
	// +optional
	LocalCIDRs DualCIDR `json:"localCIDRs,omitempty"`

	// Encryption is what every cluster asks for unless it says otherwise:
	// None (clear VXLAN) or WireGuard (VXLAN inside WireGuard between the
	// edge nodes). A pair of clusters is encrypted when either asks.
	// Defaults to None.
	// +optional
	Encryption Encryption `json:"encryption,omitempty"`
}

// DualCIDR is one CIDR per IP family.
type DualCIDR struct {
	// IPv4 is the IPv4 CIDR.
	// +optional
	IPv4 string `json:"ipv4,omitempty"`
	// IPv6 is the IPv6 CIDR.
	// +optional
	IPv6 string `json:"ipv6,omitempty"`
}

// VXLANSpec configures the four tunnel devices.
type VXLANSpec struct {
	// Bridge is the cross-cluster IPv4 device vx-bridge. Defaults to VNI 54, port 4876.
	// +optional
	Bridge VXLANDevice `json:"bridge,omitempty"`
	// Local is the node-to-gateway IPv4 device vx-local. Defaults to VNI 55, port 4877.
	// +optional
	Local VXLANDevice `json:"local,omitempty"`
	// Bridge6 is the cross-cluster IPv6 device vx-bridge-6. Defaults to VNI 64, port 4866.
	// +optional
	Bridge6 VXLANDevice `json:"bridge6,omitempty"`
	// Local6 is the node-to-gateway IPv6 device vx-local-6. Defaults to VNI 65, port 4867.
	// +optional
	Local6 VXLANDevice `json:"local6,omitempty"`

	// MTU of the tunnel devices. 0 (the default) derives it from the underlay
	// interface: its MTU minus the 50 bytes VXLAN adds.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=9000
	MTU int32 `json:"mtu,omitempty"`
}

// VXLANDevice is the identity of one VXLAN device.
type VXLANDevice struct {
	// VNI is the VXLAN network identifier.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16777215
	VNI int32 `json:"vni,omitempty"`
	// Port is the UDP destination port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
}

// TreeMode is how a member cluster appears in the host.
// +kubebuilder:validation:Enum=Aggregate;OneToOne
type TreeMode string

// Tree modes.
const (
	// TreeAggregate: one virtual node stands for the whole member.
	TreeAggregate TreeMode = "Aggregate"
	// TreeOneToOne: one virtual node per member node.
	TreeOneToOne TreeMode = "OneToOne"
)

// TreeSpec is a member cluster's ClusterTree configuration.
type TreeSpec struct {
	// Enabled shows the member as node(s) of the host. Defaults to true for
	// members; the host cannot enable it.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// Mode is Aggregate (one virtual node for the cluster) or OneToOne (one
	// virtual node per member node). Defaults to Aggregate.
	// +optional
	Mode TreeMode `json:"mode,omitempty"`

	// NodeSelector limits which member nodes count towards the virtual
	// node(s); empty means all.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// NodeLabels are extra labels for the virtual node(s).
	// +optional
	NodeLabels map[string]string `json:"nodeLabels,omitempty"`

	// NodeTaints are extra taints for the virtual node(s), besides
	// kosmos.io/leaf=true:NoSchedule.
	// +optional
	NodeTaints []Taint `json:"nodeTaints,omitempty"`

	// MemberTolerations are the taint keys of this member that pods from
	// the host may tolerate (in their spec or their kosmos.io/member-scheduling
	// annotation); none by default. A pod whose annotation tolerates
	// another key is refused; other tolerations of its spec are dropped in
	// the member. The empty key and the control-plane keys
	// (node-role.kubernetes.io/control-plane, /master) are never allowed.
	// +optional
	MemberTolerations []string `json:"memberTolerations,omitempty"`

	// NodeGroups show parts of the member as virtual nodes of their own, in
	// Aggregate mode: one node "kosmos-<cluster>.<group>.group" per group,
	// summing the member nodes its selector picks, with the group's labels
	// and taints; pods bound to it run on those member nodes only. A member
	// node belongs to the first group whose selector matches it; the nodes
	// of no group that nodeSelector selects make the cluster's default
	// virtual node "kosmos-<cluster>", whose pods are kept off the groups'
	// nodes in the member. Aggregate mode only.
	// +optional
	// +listType=map
	// +listMapKey=name
	NodeGroups []NodeGroup `json:"nodeGroups,omitempty"`
}

// NodeGroup is a part of a member cluster shown as its own virtual node
// (a GPU pool, say).
type NodeGroup struct {
	// Name of the group, a DNS-1123 label unique in the cluster; part of
	// its virtual node's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// NodeSelector picks the group's member nodes by their labels; it may
	// not be empty.
	NodeSelector map[string]string `json:"nodeSelector"`

	// Labels are extra labels of the group's virtual node (nodeLabels are
	// not added to it).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Taints are extra taints of the group's virtual node, besides
	// kosmos.io/leaf=true:NoSchedule (nodeTaints are not added to it).
	// +optional
	Taints []Taint `json:"taints,omitempty"`
}

// TaintEffect is the effect of a taint.
// +kubebuilder:validation:Enum=NoSchedule;PreferNoSchedule;NoExecute
type TaintEffect string

// Taint is a node taint.
type Taint struct {
	// Key of the taint.
	Key string `json:"key"`
	// Value of the taint.
	// +optional
	Value string `json:"value,omitempty"`
	// Effect of the taint.
	Effect TaintEffect `json:"effect"`
}

// DistributionPolicySpec says how replicas of matching pods spread over
// clusters.
type DistributionPolicySpec struct {
	// Name identifies the policy; a DNS-1123 subdomain, unique in the topology.
	Name string `json:"name"`

	// Selector chooses the pods the policy governs.
	Selector PodSelector `json:"selector"`

	// Placement says where the selected pods go.
	Placement Placement `json:"placement"`
}

// PodSelector chooses pods.
type PodSelector struct {
	// Namespace the pods live in; empty means every namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// LabelSelector the pods' labels must match; empty matches every pod of
	// the namespace.
	// +optional
	LabelSelector *metav1.LabelSelector `json:"labelSelector,omitempty"`

	// Owner narrows the selection to pods owned by one workload.
	// +optional
	Owner *OwnerSelector `json:"owner,omitempty"`
}

// OwnerSelector names a workload by its kind and name.
type OwnerSelector struct {
	// Kind of the owner (ReplicaSet, StatefulSet, Job, ...). A Deployment's pods
	// are owned by its ReplicaSets: use Kind Deployment and Kosmos follows the chain.
	Kind string `json:"kind"`
	// Name of the owner; empty means any owner of that kind.
	// +optional
	Name string `json:"name,omitempty"`
}

// PlacementMode says whether a policy is a rule or a preference.
// +kubebuilder:validation:Enum=Required;Preferred
type PlacementMode string

// Placement modes.
const (
	// PlacementRequired: nodes that would break the policy are rejected.
	PlacementRequired PlacementMode = "Required"
	// PlacementPreferred: the policy only scores nodes.
	PlacementPreferred PlacementMode = "Preferred"
)

// Placement says where the pods of a policy go.
type Placement struct {
	// Clusters are the placement targets with their weight or fixed replica
	// count. Either every entry has a weight or every entry has replicas.
	// Empty means every member cluster with ClusterTree enabled (and the host,
	// with includeHost), at weight 1 each.
	// +optional
	Clusters []ClusterPlacement `json:"clusters,omitempty"`

	// IncludeHost places replicas on the host's own nodes too; the host
	// cluster may then be listed in clusters like a member.
	// +optional
	IncludeHost bool `json:"includeHost,omitempty"`

	// Spread keeps replicas balanced across regions, zones or clusters.
	// With fixed replica counts, replicas beyond their sum are placed by spread.
	// +optional
	Spread *Spread `json:"spread,omitempty"`

	// Mode is Required (nodes that would break the policy are rejected) or
	// Preferred (the policy only scores nodes). Defaults to Required.
	// +optional
	Mode PlacementMode `json:"mode,omitempty"`
}

// ClusterPlacement is one target of a placement.
type ClusterPlacement struct {
	// Name of a cluster in spec.clusters.
	Name string `json:"name"`

	// Weight is the cluster's share of the replicas relative to the other
	// entries; the split uses largest-remainder rounding.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Weight *int32 `json:"weight,omitempty"`

	// Replicas is a fixed number of replicas for the cluster.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Replicas *int32 `json:"replicas,omitempty"`
}

// SpreadBy is a spread domain.
// +kubebuilder:validation:Enum=region;zone;cluster
type SpreadBy string

// Spread domains.
const (
	SpreadByRegion  SpreadBy = "region"
	SpreadByZone    SpreadBy = "zone"
	SpreadByCluster SpreadBy = "cluster"
)

// Spread balances replicas across domains.
type Spread struct {
	// By is the domain: region, zone or cluster.
	By SpreadBy `json:"by"`

	// MaxSkew is the largest allowed difference between the replica counts of
	// two domains. Defaults to 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxSkew int32 `json:"maxSkew,omitempty"`
}

// ServiceSpec exports one service across clusters.
type ServiceSpec struct {
	// Namespace of the service.
	Namespace string `json:"namespace"`

	// Name of the service.
	Name string `json:"name"`

	// Clusters that export the service; empty means every cluster that has it.
	// +optional
	Clusters []string `json:"clusters,omitempty"`
}

// DNSSpec configures multi-cluster DNS.
type DNSSpec struct {
	// Domain answered by the Kosmos DNS plugin. Defaults to clusterset.local.
	// +optional
	Domain string `json:"domain,omitempty"`
}

// TopologyStatus reports how far the reconciler got. It follows kstatus:
// observedGeneration and the conditions Ready, Reconciling and Stalled.
type TopologyStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Ready, Reconciling and Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ClusterCount is the number of clusters in the topology.
	// +optional
	ClusterCount int32 `json:"clusterCount,omitempty"`

	// Clusters report each cluster's state.
	// +optional
	Clusters []ClusterStatus `json:"clusters,omitempty"`
}

// ClusterStatus is what the reconciler last saw of one cluster.
type ClusterStatus struct {
	// Name of the cluster.
	Name string `json:"name"`
	// Reachable is whether the last attempt to reach the cluster succeeded.
	// +optional
	Reachable bool `json:"reachable,omitempty"`
	// Message explains an unreachable or failing cluster.
	// +optional
	Message string `json:"message,omitempty"`
	// Objects is the number of objects Kosmos manages in the cluster.
	// +optional
	Objects int32 `json:"objects,omitempty"`
}
