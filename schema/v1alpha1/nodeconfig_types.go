package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KindNodeConfig is the kind of the per-node ClusterLink configuration.
const KindNodeConfig = "NodeConfig"

// DevicePrefix starts the name of every network device the node agent owns;
// it refuses to touch any other.
const DevicePrefix = "vx-"

// Names of the four ClusterLink devices.
const (
	DeviceBridge  = "vx-bridge"
	DeviceLocal   = "vx-local"
	DeviceBridge6 = "vx-bridge-6"
	DeviceLocal6  = "vx-local-6"
)

// NodeConfig is the ClusterLink configuration of one node: the devices,
// addresses, routes, forwarding and neighbour entries and NAT mappings the
// node agent makes its kernel hold. It is computed by the reconciler's
// planner and holds structured data only: never a rule string or a command.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=knc,categories=kosmos
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Devices",type=string,JSONPath=`.spec.devices[*].name`
// +kubebuilder:printcolumn:name="Applied",type=string,JSONPath=`.status.conditions[?(@.type=="Applied")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NodeConfig struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata; the name is the node's name.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired network state of the node.
	Spec NodeConfigSpec `json:"spec"`

	// Status is written by the node agent.
	// +optional
	Status NodeConfigStatus `json:"status,omitempty"`
}

// NodeConfigList is a list of NodeConfig objects.
//
// +kubebuilder:object:root=true
type NodeConfigList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the node configurations.
	Items []NodeConfig `json:"items"`
}

func init() { objectTypes = append(objectTypes, &NodeConfig{}, &NodeConfigList{}) }

// NodeConfigSpec is the desired ClusterLink state of one node. Every list is
// sorted, so that an unchanged plan yields an identical object.
type NodeConfigSpec struct {
	// Devices are the VXLAN devices of the node.
	// +optional
	Devices []Device `json:"devices,omitempty"`

	// Routes send remote ranges into a device.
	// +optional
	Routes []Route `json:"routes,omitempty"`

	// FDB holds static forwarding entries: which underlay address a remote
	// device MAC lives at. There is no learning and no multicast.
	// +optional
	FDB []FDBEntry `json:"fdb,omitempty"`

	// Neighbors are permanent ARP/NDP entries: the MAC of each remote device
	// address.
	// +optional
	Neighbors []Neighbor `json:"neighbors,omitempty"`

	// LocalCIDRs are the pod and service ranges of the node's own cluster,
	// as the cluster itself addresses them (real, not global). The agent
	// forwards through its devices only between these, the routed
	// destinations and the devices' own networks.
	// +optional
	LocalCIDRs []string `json:"localCIDRs,omitempty"`

	// NAT is the address translation this node does at the cluster's edge.
	// Nullable: when a node stops being an edge, server-side apply removes
	// every field of it and leaves null behind.
	// +optional
	// +nullable
	NAT NATSpec `json:"nat,omitempty"`

	// Peers, when set, says that the node's cross-cluster routes, FDB and
	// neighbour entries are not listed here but derived by the agent from
	// the ClusterPeers objects of its cluster (the shared contract); the
	// lists above then hold only what is the node's own (its way to its own
	// gateway, say), and the derived entries are added to them. Without it
	// (a NodeConfig of an earlier release) the lists above are complete.
	// +optional
	Peers *PeeringSpec `json:"peers,omitempty"`

	// WireGuard, when set, is the node's WireGuard device: the VXLAN
	// traffic to encrypted peers' underlay addresses goes through it, and
	// clear VXLAN from them is dropped.
	// +optional
	WireGuard *WireGuardSpec `json:"wireGuard,omitempty"`
}

// PeeringSpec says how a node derives its cross-cluster entries from the
// ClusterPeers objects.
type PeeringSpec struct {
	// Cluster is the node's own cluster; a ClusterPeers object describing
	// it is ignored.
	// +kubebuilder:validation:MinLength=1
	Cluster string `json:"cluster"`

	// Topology selects the ClusterPeers objects by their kosmos.io/topology
	// label; empty selects every ClusterPeers object Kosmos manages.
	// +optional
	Topology string `json:"topology,omitempty"`

	// Paths are the ways remote traffic leaves the node, one per IP family.
	// +optional
	Paths []PeerPath `json:"paths,omitempty"`
}

// PeerPath is one way remote traffic leaves a node.
type PeerPath struct {
	// Device is the outgoing device. A cross-cluster device (vx-bridge,
	// vx-bridge-6, without Via) tunnels straight to the remote endpoints
	// whose tunnels carry the same name: one FDB and neighbour entry per
	// endpoint, and its routes. A device with Via (vx-local behind a
	// gateway) sends every remote cluster's CIDRs of Via's family there.
	// +kubebuilder:validation:Pattern=`^vx-[a-z0-9-]{1,12}$`
	Device string `json:"device"`

	// Via is the next hop of every remote range (the own gateway's local
	// device address); empty for a cross-cluster device.
	// +optional
	Via string `json:"via,omitempty"`

	// Candidates are, on a node behind a gateway, every gateway candidate
	// of its cluster in order of preference (the active one first, whose
	// address Via repeats). The agent probes them and routes through the
	// first live one (gateway HA); an agent of an earlier release reads
	// only Via.
	// +optional
	Candidates []PathCandidate `json:"candidates,omitempty"`
}

// PathCandidate is one gateway candidate a path may lead through.
type PathCandidate struct {
	// Name is the candidate node's name.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Via is the candidate's local device address: the next hop of every
	// remote range while the candidate is the one in use.
	Via string `json:"via"`
}

// Device is one VXLAN device.
type Device struct {
	// Name of the device; it starts with vx-.
	// +kubebuilder:validation:Pattern=`^vx-[a-z0-9-]{1,12}$`
	Name string `json:"name"`

	// VNI is the VXLAN network identifier.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16777215
	VNI int32 `json:"vni"`

	// Port is the UDP port the device sends to and listens on.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// MAC is the device's hardware address (locally administered, derived
	// from the cluster, node and device names, so recomputing changes nothing).
	MAC string `json:"mac"`

	// MTU of the device; 0 means the underlay interface's MTU minus 50.
	// +optional
	MTU int32 `json:"mtu,omitempty"`

	// UnderlayIP is the node's address the tunnel is sent from (its VTEP).
	UnderlayIP string `json:"underlayIP"`

	// NIC is the interface the tunnel is bound to: auto for the one that
	// holds UnderlayIP, a name, cidr:<CIDR> or can-reach:<IP> (see the
	// topology's network.nic).
	// +optional
	NIC string `json:"nic,omitempty"`

	// Addresses of the device, in CIDR notation.
	// +optional
	Addresses []string `json:"addresses,omitempty"`
}

// Route sends a destination range to a next hop through a device.
type Route struct {
	// Dst is the destination CIDR.
	Dst string `json:"dst"`
	// Via is the next hop: the remote device address.
	Via string `json:"via"`
	// Device is the outgoing device.
	Device string `json:"device"`
}

// FDBEntry says at which underlay address a remote device MAC is.
type FDBEntry struct {
	// MAC of the remote device.
	MAC string `json:"mac"`
	// Dst is the remote node's underlay address.
	Dst string `json:"dst"`
	// Device is the local device the entry belongs to.
	Device string `json:"device"`
}

// Neighbor is a permanent ARP or NDP entry.
type Neighbor struct {
	// IP is the remote device address.
	IP string `json:"ip"`
	// MAC is the remote device's hardware address.
	MAC string `json:"mac"`
	// Device is the local device the entry belongs to.
	Device string `json:"device"`
}

// NATSpec is the address translation at a cluster's edge.
type NATSpec struct {
	// Mappings translate the node's cluster's real ranges 1:1 to their
	// GlobalCIDRs: sources leaving through EdgeDevices are mapped to global,
	// destinations arriving through them mapped back to real.
	// +optional
	Mappings []NATMapping `json:"mappings,omitempty"`

	// EdgeDevices are the devices the mappings apply on.
	// +optional
	EdgeDevices []string `json:"edgeDevices,omitempty"`

	// Masquerade hides, behind the device's own address, traffic that leaves
	// through a device from a source outside the listed ranges (a Gateway's
	// cross-cluster device: traffic of other nodes' host network).
	// +optional
	Masquerade []MasqueradeRule `json:"masquerade,omitempty"`

	// MasqueradeSources hides, behind the outgoing interface's address,
	// traffic from the listed source ranges that leaves through any
	// interface but the named device: on a gateway candidate, remote
	// host-network traffic (its source a remote tunnel address) forwarded
	// into its cluster, so that the replies come back through the candidate
	// that translated the connection, whichever node the pod is on. An
	// agent of an earlier release ignores it.
	// +optional
	MasqueradeSources []SourceMasquerade `json:"masqueradeSources,omitempty"`
}

// SourceMasquerade masquerades traffic from some sources leaving through
// any interface but one device.
type SourceMasquerade struct {
	// Device is the device the traffic is left alone on (the cross-cluster
	// device it arrived through).
	Device string `json:"device"`
	// Sources are the source ranges masqueraded.
	Sources []string `json:"sources"`
}

// NATMapping maps a real CIDR onto a global CIDR of the same size.
type NATMapping struct {
	// RealCIDR is the range inside the cluster.
	RealCIDR string `json:"realCIDR"`
	// GlobalCIDR is the range other clusters see.
	GlobalCIDR string `json:"globalCIDR"`
}

// MasqueradeRule masquerades traffic leaving a device.
type MasqueradeRule struct {
	// Device the traffic leaves through.
	Device string `json:"device"`
	// ExceptSources are source ranges left as they are (the cluster's pod
	// ranges, which remote clusters route back themselves).
	// +optional
	ExceptSources []string `json:"exceptSources,omitempty"`
}

// NodeConfigStatus is what the node agent reports.
type NodeConfigStatus struct {
	// ObservedGeneration is the generation last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Applied (with reason and message on failure), plus the
	// kstatus conditions Ready, Reconciling and Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// LastChanges summarises what the last apply changed in the kernel.
	// +optional
	LastChanges []string `json:"lastChanges,omitempty"`

	// Contract is the NodeConfig contract the agent speaks: Shared for an
	// agent that derives its entries from ClusterPeers objects; empty for
	// an agent of an earlier release, whose NodeConfig the reconciler keeps
	// writing in full.
	// +optional
	Contract string `json:"contract,omitempty"`

	// Peers are the ClusterPeers objects the last apply derived from, with
	// the generation of each: the kernel matches those generations when
	// Applied is True.
	// +optional
	Peers []AppliedPeers `json:"peers,omitempty"`

	// WireGuard is the node's WireGuard identity and device, when it has one.
	// +optional
	WireGuard *WireGuardStatus `json:"wireGuard,omitempty"`

	// Gateways are the gateway candidates the agent currently sends
	// through, one per Gateway-mode cluster it reaches over a candidate
	// list (its own cluster's gateway, remote gateways), as its probes
	// chose them (gateway HA); one per cluster and device where the
	// families (IPv4, IPv6 devices) of a cluster chose differently.
	// +optional
	// +listType=map
	// +listMapKey=cluster
	// +listMapKey=device
	Gateways []GatewayChoice `json:"gateways,omitempty"`
}

// GatewayChoice is the gateway candidate an agent sends through for one
// cluster.
type GatewayChoice struct {
	// Cluster is the Gateway-mode cluster (the node's own for its way out).
	Cluster string `json:"cluster"`
	// Device is the tunnel device the choice holds for, when the
	// cluster's families chose differently; empty: every device.
	// +optional
	// +kubebuilder:default=""
	Device string `json:"device"`
	// Active is the candidate node in use.
	Active string `json:"active"`
	// Since is when the agent moved to it (or started using it).
	// +optional
	Since metav1.Time `json:"since,omitempty"`
	// Planned is the candidate the agent's config puts first (the plan's
	// gateway as this agent last read it): Active differs from it only
	// when the agent's probes moved it away. The reconciler's catch-up
	// counts only such moves, so an agent that has not yet read a new
	// plan does not vote for the gateway the plan just left. Empty from
	// agents of earlier releases.
	// +optional
	Planned string `json:"planned,omitempty"`
	// Down lists the candidates the agent's probes find down (that many
	// misses in a row), Active included when every candidate is down (the
	// agent keeps it then, having nothing better): the reconciler elects
	// no candidate that most agents of some remote cluster find down, and
	// an Active listed here is no sign that it is alive. Empty from agents
	// of earlier releases.
	// +optional
	Down []string `json:"down,omitempty"`
	// Answered says Active has answered a probe since the agent chose it.
	// False from an agent that started and has had no answer yet: its
	// report is then no sign that Active is alive. Absent from agents of
	// earlier releases (taken as answered).
	// +optional
	Answered *bool `json:"answered,omitempty"`
}

// AppliedPeers names a ClusterPeers object and the generation an agent
// applied.
type AppliedPeers struct {
	// Name of the ClusterPeers object.
	Name string `json:"name"`
	// Generation applied.
	Generation int64 `json:"generation"`
}
