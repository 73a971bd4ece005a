package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KindClusterPeers is the kind of the shared, per-remote-cluster ClusterLink
// facts.
const KindClusterPeers = "ClusterPeers"

// ContractShared is what an agent that derives its cross-cluster entries
// from ClusterPeers objects reports in NodeConfig status.contract. An agent
// of an earlier release reports nothing there; the reconciler keeps writing
// the full (legacy) entries into the NodeConfig of such a node.
const ContractShared = "Shared"

// PeersShardSize is the number of endpoints a ClusterPeers shard holds on
// average: a cluster of more nodes is split over a power of two of shards,
// each node placed by a hash of its name (see reconciler/netplan).
const PeersShardSize = 256

// ClusterPeers is what every node of a cluster needs to know of one remote
// cluster to reach it: its mode, its ranges, its node endpoints (underlay
// address, tunnel device address and MAC, pod ranges) and, in Gateway mode,
// its ordered gateway candidates. The reconciler writes it once per remote
// cluster (sharded when the remote cluster is large) into every other
// cluster; every node agent of that cluster reads it and derives its own
// routes, FDB and neighbour entries. A node joining a cluster thus changes
// one shard per peer cluster, not every peer's NodeConfig. It is
// cluster-scoped, like NodeConfig, and named <cluster>.<shard>-of-<shards>.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=kcp,categories=kosmos
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Shard",type=integer,JSONPath=`.spec.shard`
// +kubebuilder:printcolumn:name="Shards",type=integer,JSONPath=`.spec.shards`
// +kubebuilder:printcolumn:name="Gateways",type=string,JSONPath=`.spec.gateways`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterPeers struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec describes one shard of one remote cluster.
	Spec ClusterPeersSpec `json:"spec"`
}

// ClusterPeersList is a list of ClusterPeers objects.
//
// +kubebuilder:object:root=true
type ClusterPeersList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the shards.
	Items []ClusterPeers `json:"items"`
}

func init() { objectTypes = append(objectTypes, &ClusterPeers{}, &ClusterPeersList{}) }

// ClusterPeersSpec is one shard of what a remote cluster shares. Mode,
// CIDRs and Gateways are repeated in every shard; Endpoints are split
// between the shards. Every list is sorted (Gateways in order of
// preference), so that an unchanged cluster yields identical objects.
type ClusterPeersSpec struct {
	// Cluster is the remote cluster described.
	// +kubebuilder:validation:MinLength=1
	Cluster string `json:"cluster"`

	// Mode is the remote cluster's network mode: in P2P every endpoint
	// receives its own CIDRs; in Gateway mode the cluster's CIDRs go to
	// its gateway.
	// +kubebuilder:validation:Enum=P2P;Gateway
	Mode NetworkMode `json:"mode"`

	// Shard is this object's index among Shards.
	// +kubebuilder:validation:Minimum=0
	Shard int32 `json:"shard"`

	// Shards is the number of objects the cluster's endpoints are split
	// over (a power of two).
	// +kubebuilder:validation:Minimum=1
	Shards int32 `json:"shards"`

	// CIDRs are the cluster's whole pod and service ranges as other clusters
	// address them (their GlobalCIDR images where mapped), of every family
	// it uses. Nodes behind a gateway send all of them to their own gateway;
	// in Gateway mode they are routed to the remote gateway.
	// +optional
	CIDRs []string `json:"cidrs,omitempty"`

	// Gateways are the gateway candidates of a Gateway-mode cluster in order
	// of preference, the active one first. Each has an endpoint (in the
	// shard its name hashes to) and is kept hot on every node that reaches
	// the cluster. Agents route through the first, and move down the list
	// when their probes say it is gone (gateway HA).
	// +optional
	Gateways []string `json:"gateways,omitempty"`

	// Endpoints are the remote nodes other clusters tunnel to: every node in
	// P2P, the gateway candidates in Gateway mode. Sorted by name.
	// +optional
	Endpoints []PeerEndpoint `json:"endpoints,omitempty"`

	// Encryption is what the cluster asks for: with WireGuard, every node
	// reaches its endpoints through WireGuard only. Empty means None.
	// +optional
	Encryption Encryption `json:"encryption,omitempty"`
}

// PeerEndpoint is one remote node reachable over the cross-cluster device.
// New optional fields (a tunnel's public key, say) may be added; agents
// ignore what they do not know.
type PeerEndpoint struct {
	// Name is the node's name.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Tunnels are the node's cross-cluster devices, one per IP family.
	// +optional
	Tunnels []PeerTunnel `json:"tunnels,omitempty"`

	// CIDRs are the ranges routed to this node (P2P): its pod ranges (global
	// images where mapped), and the cluster's service ranges on the node
	// chosen for them.
	// +optional
	CIDRs []string `json:"cidrs,omitempty"`

	// WireGuard is the node's WireGuard identity, once its agent published
	// a key. An encrypted pair never tunnels to an endpoint without it.
	// +optional
	WireGuard *PeerWireGuard `json:"wireGuard,omitempty"`
}

// PeerTunnel is one VXLAN device of a remote node.
type PeerTunnel struct {
	// Device is the device's name (vx-bridge, vx-bridge-6); the local end
	// of the tunnel carries the same name.
	// +kubebuilder:validation:Pattern=`^vx-[a-z0-9-]{1,12}$`
	Device string `json:"device"`

	// UnderlayIP is the remote node's address the tunnel is sent to (its
	// VTEP).
	UnderlayIP string `json:"underlayIP"`

	// Address is the device's own address (no prefix length): the next hop
	// of the routes to this node.
	Address string `json:"address"`

	// MAC is the device's hardware address.
	MAC string `json:"mac"`
}
