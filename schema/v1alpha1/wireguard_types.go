package v1alpha1

// Encryption of cross-cluster traffic.
//
// The rule: a pair of clusters is encrypted when either of them asks
// (its network.encryption, or spec.network.encryption when it does not say).
// A cluster that asks thus talks to every other cluster through WireGuard;
// two clusters that do not ask talk in clear VXLAN, as before.
//
// Keys never leave the node: each agent makes its key pair in its state
// directory and publishes the public key in its NodeConfig status
// (status.wireGuard.publicKey); the planner copies it into the node's
// PeerEndpoint, from which every peer derives its WireGuard peer entry. An
// endpoint of an encrypted pair that has published no key gets no route at
// all (fail closed), never a plaintext one.

// Encryption says how a cluster's cross-cluster traffic is protected.
// +kubebuilder:validation:Enum=None;WireGuard
type Encryption string

// Encryption modes.
const (
	// EncryptionNone: clear VXLAN, unless the other side asks.
	EncryptionNone Encryption = "None"
	// EncryptionWireGuard: VXLAN inside WireGuard between the edge nodes.
	EncryptionWireGuard Encryption = "WireGuard"
)

// WireGuard defaults: the device every encrypting edge node holds, the UDP
// port it listens on, and the firewall mark its own UDP packets carry (they
// must not be routed into the device again).
const (
	DeviceWireGuard          = "vx-wg"
	DefaultWireGuardPort     = 51871
	DefaultWireGuardFwMark   = 0x4b57
	WireGuardOverheadBytes   = 80 // outer IPv6 (40) + UDP (8) + WireGuard (32); 60 over IPv4
	WireGuardPathKernel      = "kernel"
	WireGuardPathUserspace   = "userspace"
	WireGuardPublicKeyLength = 44 // base64 of 32 bytes
)

// PeerWireGuard is a remote edge node's WireGuard identity.
type PeerWireGuard struct {
	// PublicKey is the node's WireGuard public key (base64), as its agent
	// published it.
	// +kubebuilder:validation:MinLength=44
	// +kubebuilder:validation:MaxLength=44
	PublicKey string `json:"publicKey"`

	// Port is the UDP port the node's WireGuard device listens on.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// NextPublicKey is the key the node rotates to, while it rotates
	// (NodeConfig status.wireGuard.nextPublicKey): peers hold it on their
	// rotation device (the WireGuard device's name with a 1, on port+1)
	// until the node makes it its public key.
	// +kubebuilder:validation:MinLength=44
	// +kubebuilder:validation:MaxLength=44
	// +optional
	NextPublicKey string `json:"nextPublicKey,omitempty"`
}

// WireGuardSpec is a node's WireGuard device: present on an edge node
// (every node in P2P, the gateway) of a cluster with at least one encrypted
// pair.
type WireGuardSpec struct {
	// Device is the WireGuard device's name.
	// +kubebuilder:validation:Pattern=`^vx-[a-z0-9-]{1,12}$`
	Device string `json:"device"`

	// Port is the UDP port the device listens on.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// FirewallMark marks the device's own UDP packets, which the agent's
	// policy rule leaves in the main table.
	// +kubebuilder:validation:Minimum=1
	FirewallMark int32 `json:"firewallMark"`

	// EncryptAll says the node's own cluster asks for encryption: every
	// remote endpoint is reached through WireGuard. Otherwise only the
	// endpoints of clusters that ask (ClusterPeers spec.encryption) are.
	// +optional
	EncryptAll bool `json:"encryptAll,omitempty"`

	// Peers are the remote edge nodes reached through the device. The agent
	// derives them from the ClusterPeers objects (package peering); a
	// NodeConfig written complete for an agent of an earlier release lists
	// them here.
	// +optional
	Peers []WireGuardPeer `json:"peers,omitempty"`
}

// WireGuardPeer is one remote edge node reached through WireGuard.
type WireGuardPeer struct {
	// Name is the remote node, as cluster/node.
	Name string `json:"name"`
	// PublicKey is its WireGuard public key.
	PublicKey string `json:"publicKey"`
	// NextPublicKey is the key it rotates to, while it rotates: held on
	// the rotation device, so that the handover to the new key loses
	// nothing.
	// +optional
	NextPublicKey string `json:"nextPublicKey,omitempty"`
	// Endpoint is its underlay address and WireGuard port (ip:port; the
	// IPv4 one of a dual-stack node).
	Endpoint string `json:"endpoint"`
	// AllowedIPs are its underlay addresses as host prefixes (/32, /128):
	// the only traffic sent to or accepted from it through the device is
	// its VXLAN tunnels. Never a wider range.
	AllowedIPs []string `json:"allowedIPs"`
}

// WireGuardStatus is what the agent reports of its WireGuard device.
type WireGuardStatus struct {
	// PublicKey is the node's WireGuard public key. The private key stays
	// in the agent's state directory and is never written anywhere else.
	// +optional
	PublicKey string `json:"publicKey,omitempty"`
	// NextPublicKey is the key the node rotates to (kosmos agent
	// --rotate-wireguard-key), published before the node uses it: once its
	// peers hold it (a handshake on the rotation device with each), the
	// agent makes it its public key. Empty when no rotation is under way.
	// +optional
	NextPublicKey string `json:"nextPublicKey,omitempty"`
	// Path is kernel (the kernel module, through netlink) or userspace
	// (wireguard-go over a TUN device, inside the agent).
	// +optional
	Path string `json:"path,omitempty"`
	// Peers is the number of peers configured.
	// +optional
	Peers int32 `json:"peers,omitempty"`
	// Handshaken is the number of peers with a completed handshake.
	// +optional
	Handshaken int32 `json:"handshaken,omitempty"`
}

// ClusterEncryption is the encryption a cluster asks for: its own setting,
// else the topology's.
func (s *TopologySpec) ClusterEncryption(c *ClusterSpec) Encryption {
	if c.Network.Encryption != "" {
		return c.Network.Encryption
	}
	if s.Network.Encryption != "" {
		return s.Network.Encryption
	}
	return EncryptionNone
}
