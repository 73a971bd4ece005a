// Package peering gives the shared ClusterLink contract its meaning: a pure
// function from one node's NodeConfig and the ClusterPeers objects of its
// cluster to the complete list of routes, FDB and neighbour entries the node
// holds. The node agent calls it before every apply; the reconciler calls
// the same function to write complete NodeConfigs for agents of an earlier
// release, and `kosmos render` to show what a node will hold. There is one
// derivation, so the preview, the upgrade path and the kernel agree.
//
// # The split
//
// A NodeConfig keeps what is the node's own: its devices and addresses, its
// cluster's ranges (localCIDRs), its NAT, and, in a Gateway cluster, its way
// to its own gateway (or, on the gateway, to every other node). What every
// node of a cluster shares, the endpoints of each remote cluster, is written
// once per remote cluster as ClusterPeers (sharded when large). spec.peers
// says how the node reaches remote clusters: through a cross-cluster device
// straight to the endpoints (an edge node: every node in P2P, the gateway),
// or through a local device to its own gateway (Via).
//
// # Rules
//
//   - A NodeConfig without spec.peers is complete as it is (the contract of
//     the earlier release): Derive returns it unchanged.
//   - Objects describing the node's own cluster are ignored; so are objects
//     of another topology (Select).
//   - Shards of one cluster are merged: endpoints by name (the first object
//     by name wins when a shard split leaves one endpoint in two objects for
//     a moment), CIDRs as a set, the gateway order from the first object
//     that names one.
//   - An agent first settles the shard sets (Settle): a remote cluster
//     whose set <cluster>.<i>-of-<n> lacks a shard keeps the shards used
//     before, and of two complete sets (a re-split) the new one is used, so
//     a late shard never withdraws a route.
//   - A cross-cluster path gets, per remote P2P endpoint with a tunnel of
//     that device: one FDB entry (MAC at underlay address), one permanent
//     neighbour (address to MAC) and a route for each of its CIDRs of the
//     tunnel's family. Every gateway candidate of a remote Gateway cluster
//     gets its FDB and neighbour entries (hot standbys); the cluster's CIDRs
//     are routed to the chosen candidate (Choice; DeriveWith), the first
//     without a choice.
//   - A path with Via gets a route for every remote cluster's CIDR of Via's
//     family, via the chosen one of its Candidates when it names them.
//   - A path with Candidates and no Via is a gateway candidate's own way
//     out: when the chosen candidate is another node, it routes through it
//     like a path with Via, and the node's cross-cluster path of that
//     family keeps only its FDB and neighbour entries; when it is the node
//     itself, the path adds nothing.
//   - Groups lists the candidate lists a node may choose from: what its
//     agent probes (gateway HA).
//   - The explicit entries are kept; the result is sorted and free of exact
//     duplicates, so the same inputs always yield the same spec.
//   - Encryption (wireguard.go): a pair is encrypted when the remote cluster
//     asks (ClusterPeers spec.encryption) or the node's own does
//     (spec.wireGuard.encryptAll). An endpoint of an encrypted pair gets its
//     entries only when it published a key and the node has a WireGuard
//     device, and then also a WireGuard peer (spec.wireGuard.peers: its
//     key, underlay endpoint and underlay host prefixes as allowed IPs);
//     otherwise it gets nothing at all, never a clear tunnel.
//   - Unparseable addresses, MACs or CIDRs in a ClusterPeers object are an
//     error naming the object: the agent refuses the whole result, as it
//     refuses an invalid NodeConfig, and keeps its last good state.
//
// Usage:
//
//	peers, held := peering.Settle(prev, peering.Select(&nc.Spec, all))
//	full, err := peering.Derive(&nc.Spec, peers)
package peering
