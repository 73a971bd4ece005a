// Package nodeagent makes one node's kernel hold its ClusterLink NodeConfig.
// It executes; it never decides topology.
//
// # Pure core
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
// references to undeclared devices) before any write.
//
// # Thin shell
//
// Kernel is the seam: Read what the agent owns, Apply one operation, Resolve
// an automatic parent and MTU. LinuxKernel implements it with netlink and
// iptables in the current network namespace; it reads only vx- devices,
// routes of protocol 75 on them, their FDB and permanent neighbour entries,
// and the chains KOSMOS-PREROUTING, KOSMOS-POSTROUTING (nat) and
// KOSMOS-FORWARD (filter). FakeKernel holds a State in memory for the golden
// and random-walk tests.
//
// # Running
//
// Set(k, spec) is idempotent: with the kernel already matching, it writes
// nothing. Run repeats it on every resync period, every netlink route or link
// change (drift repair) and every config change; a refused config leaves the
// last good state in place; ErrNoConfig (the NodeConfig was deleted) tears
// everything down. APISource follows the node's NodeConfig in the API server
// and writes its status (Applied, Ready, observedGeneration, lastChanges).
//
//	k, _ := nodeagent.NewLinuxKernel()
//	res, err := nodeagent.Set(k, &nodeConfig.Spec)
package nodeagent
