// Package nodeagent makes one node's kernel hold its ClusterLink NodeConfig.
// It executes; it never decides topology.
//
// # Pure core
//
// Compose makes a NodeConfig complete: one with spec.peers (the shared
// contract) gets the routes, FDB and neighbour entries its cluster's
// ClusterPeers imply (internal/peering.Derive); one without (written by the
// earlier release) is complete already. Invalid shared data refuses the
// whole config (RefusedError), like a config that fails validation.
// ComposeAfter, which APISource uses, also takes the shards the previous
// composition used: a remote cluster whose shard set is incomplete (a shard
// late or not yet seen) is derived from those (internal/peering.Settle), so
// a late shard withdraws no route.
//
// Desired renders a NodeConfig into State, plain data listing the VXLAN
// devices, addresses, routes, FDB and neighbour entries and the rules of the
// agent's own chains. The rules are rendered here from structured fields,
// never taken as text from the config. Diff turns a current State into the
// desired one: additions first, deletions after; a device whose MTU or MAC
// changed is changed in place, one whose VNI, port, local address or parent
// changed is recreated, and the reason is carried in the operations
// (linkMismatch; the design notes are at the top of diff.go).
// Validate refuses a config whole (device names outside vx-, bad addresses,
// references to undeclared devices, and routes or device addresses that
// would claim what is not Kosmos's: defaults, special ranges, the underlay,
// the node's own ranges; ranges.go) before any write; at apply time,
// anything overlapping the host's own addresses is refused too.
//
// # What the agent may take
//
// Routes are added exclusively and only the agent's own (protocol 75) are
// ever replaced; a destination another owner routes is refused with a
// RouteTakenError, reported, and never touched (agent.go). KOSMOS-FORWARD is
// appended to FORWARD, behind the CNI's and kube-proxy's chains, and accepts
// only between known ranges on the agent's devices; KOSMOS-INPUT, first in
// INPUT, lets only the config's peers reach the VXLAN ports (state.go,
// renderChains). The peers and the known ranges are held in the agent's
// ipsets (KOSMOS-PEER4-<port>, KOSMOS-WGPEER4-<port>, KOSMOS-RANGE4 and
// their IPv6 twins), read and written over netlink and compared like the
// rest: each rule is one set lookup, so a packet costs the same whatever
// the fleet's size (ipset.go). KOSMOS-NOTRACK-IN and -OUT (raw table) keep
// the devices' own VXLAN datagrams out of conntrack (noTrackRules); their
// jumps are kept first, ahead of any rule that would end the raw table or
// set a conntrack template before them (chainplace.go). KOSMOS-NOMASQ, reached from KOSMOS-POSTROUTING after its
// NETMAP rules, ends address translation for traffic from the cluster's
// ranges to the remote ranges the agent routes, so that no CNI or
// kube-proxy masquerade rule rewrites its source (nomasq.go). The tunnel's
// parent interface follows the device's nic: auto, a name, cidr:<CIDR> or
// can-reach:<IP> (nic.go). Each table's chains are written in one iptables-restore
// --noflush transaction (chains.go). The sysctls the devices rely on are
// part of the compared state (sysctl.go), and so are the devices' offloads
// (checksums, scatter-gather, TSO, GSO, GRO), read and set with the
// ethtool ioctl (offload.go).
//
// # Thin shell
//
// Kernel is the seam: Read what the agent owns, Apply one operation, Resolve
// an automatic parent and MTU. LinuxKernel implements it with netlink,
// iptables-save/-restore and /proc/sys in the current network namespace; it
// reads only vx- devices, routes of protocol 75 on them, their FDB and
// permanent neighbour entries, the agent's KOSMOS- chains and the sysctls
// of its devices, plus, never to write, other owners' routes and the host's
// addresses (State.Others). FakeKernel holds a State in memory for the
// golden and random-walk tests.
//
// # Running
//
// Set(k, spec) is idempotent: with the kernel already matching, it writes
// nothing. Run repeats it on every resync period, every netlink route or link
// change (drift repair) and every config change; a refused config leaves the
// last good state in place; ErrNoConfig (the NodeConfig was deleted) tears
// everything down. APISource follows the node's NodeConfig and the
// ClusterPeers objects in the API server (list, then watch, as an informer
// does; peerwatch.go), holds the first pass until both were read (a
// restarted agent never applies a config without its shared entries), and
// writes the NodeConfig's status (Applied, Ready, observedGeneration,
// lastChanges, contract Shared and the generation of each ClusterPeers
// applied). A file holds the NodeConfig and, as further documents, its
// ClusterPeers (LoadConfigFile).
//
// # WireGuard
//
// A NodeConfig with spec.wireGuard (an edge node of a cluster with an
// encrypted pair) also gets a WireGuard device: Run's Before hook calls
// WireGuard.Sync ahead of Set, so that the device, the agent's policy rule
// (priority 4876, UDP to the cross-cluster VXLAN ports) and its table
// (4876: a route through the device and a blackhole per encrypted peer)
// exist before any FDB entry to such a peer; Sync only adds. Run's After
// hook calls WireGuard.Settle once Set succeeded, which removes what the
// config no longer asks for (never before the FDB stopped using it). The
// rule and blackholes need no device: when it cannot be made, encrypted
// peers are blackholed and the pass goes on. The device is the kernel's
// (netlink + wgctrl) where the kernel has WireGuard, else wireguard-go over
// a TUN device in the agent. KOSMOS-INPUT accepts VXLAN from an encrypted
// peer only through the device; vx-bridge's derived MTU leaves room for
// WireGuard. The key pair lives in the state directory (wireguard.go);
// pure parts (wireGuardConfig, uapiPeers, wireGuardRoutes, peerChanges,
// routeChanges) are table-tested. A key rotation hands over without loss
// through a second device that exists only while it runs (the rotation
// device, vx-wg1): see wireguard_rotate.go, whose decision (rotationStep)
// is pure. WatchStateDir (statewatch.go) wakes Run when a key file of the
// state directory is written, replaced or removed, so that a rotation
// begins at once rather than at the next resync.
//
// # Gateway HA
//
// HA (probe.go) answers UDP probes on port 4801 of the devices' addresses
// and probes every gateway candidate the node may send through
// (peering.Groups), over the tunnel, every interval. The pure state machine
// of failover.go (Observe, Choose) turns the replies and misses into a
// choice: the first live candidate in plan order, moving back to an
// earlier one only after a hold. A change signals a pass, which composes
// the config with the choice (ComposeWith, peering.DeriveWith) and so
// replaces only the routes: with Options.Moves (HA.Moves) that pass
// first writes the new routes alone (fastmove.go: RouteReader, MoveOps),
// then runs in full. APISource reports the choice in
// status.gateways. A candidate forwards what its cluster's nodes send it
// out its own tunnel, never to a sibling candidate, whatever its own
// choice: a policy rule per path device (iif vx-local, priority 4877) into
// a table of its own (4877), which holds the routes peering.TransitOf
// derives (transit.go; Run's After hook, TransitRouting.Settle).
//
//	k, _ := nodeagent.NewLinuxKernel()
//	c, err := nodeagent.Compose(&nodeConfig, clusterPeers)
//	res, err := nodeagent.Set(k, c.Spec)
package nodeagent
