// Package netplan is the ClusterLink network planner: a pure function from a
// validated topology plus observed node facts to the NodeConfig of every node
// of every cluster and the ClusterPeers every cluster shares with the others.
// It touches no kernel and no API server.
//
// # Own and shared
//
// A NodeConfig holds what is the node's own (devices, localCIDRs, NAT, its
// way to its own gateway) and, in spec.peers, the paths by which it reaches
// other clusters. The remote endpoints are planned once per cluster as
// ClusterPeers shards (peers.go), which the reconciler writes into every
// other cluster and every agent derives its routes, FDB and neighbour
// entries from (package peering). A node joining a P2P cluster thus changes
// its own config and its cluster's shard, not its peers' configs. A node
// whose agent is of the earlier release (Node.LegacyAgent) gets the derived
// entries written into its NodeConfig, as that release did.
//
// # Design notes
//
// Devices. A node that tunnels across clusters carries vx-bridge (VNI 54,
// UDP 4876; vx-bridge-6 for IPv6). In a Gateway cluster only the gateway
// candidates (the elected gateway and its standbys) carry it; every node of
// that cluster, the candidates included, carries vx-local (VNI 55;
// vx-local-6) to reach them. A device address
// keeps the host bits of the node's underlay address inside the bridge or
// local range (192.168.1.10 → 220.168.1.10/8); MACs are derived from the
// cluster, node and device names, so recomputing changes nothing. Two devices
// that would share an address or MAC are reported, never produced silently.
//
// Routes (as derived). A P2P node routes each remote P2P node's pod ranges
// straight to that node's bridge address, and a remote Gateway cluster's
// whole pod and service ranges to its gateway (the first candidate). Service ranges of a P2P cluster go to a stable choice
// of node (its first node by name).
//
// Readiness. Routes follow the data plane, not the kubelet: a NotReady node
// keeps its routes, FDB and neighbour entries (when a control plane cannot
// hear its kubelets, every node turns NotReady at once, and its traffic must
// not stop); only a deleted node loses them. NotReady changes one thing: a
// gateway election prefers Ready candidates (see Gateways). Non-gateway nodes of a Gateway
// cluster send every remote cluster's whole ranges to their gateway over
// vx-local; they do not depend on remote node churn. Forwarding is static:
// one FDB entry and one permanent neighbour entry per remote device.
//
// GlobalCIDRs. A cluster whose real range is mapped is only ever addressed by
// its global image: remote routes use it, and the cluster's edge nodes (every
// node in P2P, the gateway in Gateway mode) translate 1:1 (NETMAP) on their
// bridge device: sources leaving are mapped to global, destinations arriving
// mapped back. Two clusters with the same 10.244.0.0/16 thus talk by global
// addresses, and a receiver sees the sender's global source.
//
// Gateways. The gateway is elected among the nodes matching
// gateway.nodeSelector, Ready ones first, each group in name order; the
// gateway in force (read back from the cluster) is kept while it stays a
// candidate, unless it is NotReady and another candidate is Ready (its
// machine, most likely, is gone; when every node is NotReady at once, it is
// the control plane that is gone, and nothing moves). With
// gateway.replicas > 1 the next candidates are standbys, and every
// candidate is kept hot (gateway HA): each carries what the gateway does
// (vx-bridge, NAT, local entries to every node of its cluster), every node
// behind them has entries for each and names them in order in its path
// (PeerPath.Candidates, Via the first), and remote nodes hold entries for
// each; the agents route through the first that answers their probes. When
// most agents report they moved to one candidate, the election starts from
// it, unless the remote clusters split over it (a plan problem; catchup.go). Every candidate masquerades traffic leaving vx-bridge
// from sources outside the cluster's pod ranges (other nodes' host network).
//
// Families. IPv4 and IPv6 are planned independently over the clusters whose
// ipFamily includes them; a dual-stack node gets both device pairs.
//
// Determinism and sharing. Output is sorted and independent of the order of
// the observed nodes. What a cluster's nodes share (their localCIDRs) is
// computed once and shared, read-only, by their configs.
//
// Usage:
//
//	plan := netplan.Compute(&topology.Spec, facts)
//	for _, c := range plan.Clusters {
//		/* apply c.Configs in cluster c.Name, c.Peers in every other */
//	}
//	full, _ := plan.Derived("east") // what east's agents hold
package netplan
