package netplan

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Node is what the planner needs to know of one node.
type Node struct {
	Name        string         `json:"name"`
	InternalIPs []netip.Addr   `json:"internalIPs,omitempty"`
	PodCIDRs    []netip.Prefix `json:"podCIDRs,omitempty"`
	Ready       bool           `json:"ready"`
	// ReadySince is when Ready last changed (the condition's
	// lastTransitionTime): a gateway fails over only to a candidate that
	// was Ready before the gateway went NotReady.
	ReadySince time.Time         `json:"readySince,omitzero"`
	Labels     map[string]string `json:"labels,omitempty"`
	// LegacyAgent says the node's agent is of an earlier release: it
	// reported an apply without the shared contract (NodeConfig
	// status.contract), so its NodeConfig is written complete, with every
	// entry its ClusterPeers imply.
	LegacyAgent bool `json:"legacyAgent,omitempty"`
	// WireGuardKey is the WireGuard public key the node's agent published
	// (NodeConfig status.wireGuard.publicKey); empty until it did.
	WireGuardKey string `json:"wireGuardKey,omitempty"`
	// WireGuardNextKey is the key the node's agent rotates to (NodeConfig
	// status.wireGuard.nextPublicKey); empty when it does not rotate.
	WireGuardNextKey string `json:"wireGuardNextKey,omitempty"`
	// Gateways are the gateway candidates the node's agent reports it
	// sends through, by Gateway-mode cluster (NodeConfig status.gateways;
	// gateway HA): see catchup.go.
	Gateways map[string]string `json:"gateways,omitempty"`
	// GatewaysSince is when the agent moved to each of Gateways (absent
	// or zero: long ago).
	GatewaysSince map[string]time.Time `json:"gatewaysSince,omitempty"`
	// GatewaysPlanned is, per cluster of Gateways, the candidate the
	// agent's config put first (absent: an agent of an earlier release):
	// the agent's probes moved it only where Gateways differs.
	GatewaysPlanned map[string]string `json:"gatewaysPlanned,omitempty"`
	// GatewaysDown is, per cluster of Gateways, the candidates the agent's
	// probes find down (GatewayChoice.Down; absent: an agent of an
	// earlier release, or none down).
	GatewaysDown map[string][]string `json:"gatewaysDown,omitempty"`
	// GatewaysUnproven marks the clusters of Gateways whose candidate in
	// use has not answered the agent's probes (not yet since it chose it,
	// or it is down): such a report is no sign that it is alive.
	GatewaysUnproven map[string]bool `json:"gatewaysUnproven,omitempty"`
	// GatewaysSplit is, per cluster, what the agent's families chose when
	// they chose differently (e.g. "vx-bridge b1, vx-bridge-6 b2"); such a
	// cluster has no entry in Gateways.
	GatewaysSplit map[string]string `json:"gatewaysSplit,omitempty"`
}

// ClusterFacts are the observed facts of one cluster.
type ClusterFacts struct {
	Nodes []Node `json:"nodes"`
	// Gateway is the node currently acting as the gateway (read back from the
	// NodeConfigs in force); it is kept while it stays a Ready candidate.
	Gateway string `json:"gateway,omitempty"`
	// IPAM is where the nodes' PodCIDRs were read (network.ipam, Auto
	// resolved); empty for facts of an earlier release (NodeSpec).
	IPAM v1alpha1.IPAMSource `json:"ipam,omitempty"`
}

// Facts are the observed facts of every cluster, by cluster name. A cluster
// missing here (unreachable) contributes no nodes and gets no configs.
type Facts map[string]ClusterFacts

// Plan is the desired ClusterLink state of every node of every cluster.
type Plan struct {
	Clusters []ClusterPlan `json:"clusters"`
	// Problems the planner could not plan around (address or MAC collisions,
	// a Gateway cluster without a Ready candidate, a node without an address
	// of a family its cluster uses). Each names the cluster and node.
	Problems []string `json:"problems,omitempty"`
}

// ClusterPlan is the plan of one cluster.
type ClusterPlan struct {
	Name string `json:"name"`
	// Gateway is the elected gateway of a Gateway-mode cluster, "" otherwise.
	Gateway string `json:"gateway,omitempty"`
	// Standby are the further candidates kept ready (gateway.replicas - 1).
	Standby []string `json:"standby,omitempty"`
	// Configs holds one NodeConfig per node, sorted by name. Nodes of one
	// cluster share their (read-only) tables: never modify them.
	Configs []v1alpha1.NodeConfig `json:"configs"`
	// Peers are the shards of what this cluster shares with the others
	// (ClusterPeers), sorted by shard: every other cluster holds them.
	Peers []v1alpha1.ClusterPeers `json:"peers,omitempty"`
}

// Cluster returns the plan of the named cluster, or nil.
func (p *Plan) Cluster(name string) *ClusterPlan {
	for i := range p.Clusters {
		if p.Clusters[i].Name == name {
			return &p.Clusters[i]
		}
	}
	return nil
}

// family is one IP family with its devices and ranges.
type family struct {
	v6                    bool
	bridgeDev, localDev   string
	bridge, local         v1alpha1.VXLANDevice
	bridgeCIDR, localCIDR netip.Prefix
	name                  v1alpha1.IPFamily
	usedBy                func(v1alpha1.IPFamily) bool
	matches               func(netip.Addr) bool
}

func families(n *v1alpha1.NetworkSpec) []family {
	parse := func(s string) netip.Prefix {
		pr, _ := netip.ParsePrefix(s) // validated; an invalid one leaves the family unplanned
		return pr
	}
	return []family{
		{
			bridgeDev: v1alpha1.DeviceBridge, localDev: v1alpha1.DeviceLocal,
			bridge: n.VXLAN.Bridge, local: n.VXLAN.Local,
			bridgeCIDR: parse(n.BridgeCIDRs.IPv4), localCIDR: parse(n.LocalCIDRs.IPv4),
			name:    v1alpha1.IPv4,
			usedBy:  func(f v1alpha1.IPFamily) bool { return f != v1alpha1.IPv6 },
			matches: netip.Addr.Is4,
		},
		{
			v6: true, bridgeDev: v1alpha1.DeviceBridge6, localDev: v1alpha1.DeviceLocal6,
			bridge: n.VXLAN.Bridge6, local: n.VXLAN.Local6,
			bridgeCIDR: parse(n.BridgeCIDRs.IPv6), localCIDR: parse(n.LocalCIDRs.IPv6),
			name:    v1alpha1.IPv6,
			usedBy:  func(f v1alpha1.IPFamily) bool { return f != v1alpha1.IPv4 },
			matches: func(a netip.Addr) bool { return a.Is6() && !a.Is4In6() },
		},
	}
}

// clusterState is the per-cluster working data.
type clusterState struct {
	spec    *v1alpha1.ClusterSpec
	nodes   []Node // sorted by name
	gateway string
	standby []string
	// endpoints are what other clusters tunnel to, by node name, and cidrs
	// the cluster's whole ranges as others address them: both families,
	// filled family by family (the content of its ClusterPeers).
	endpoints map[string]*v1alpha1.PeerEndpoint
	cidrs     []string
	mappings  []v1alpha1.NATMapping // of the family being planned
	// asks: the cluster asks for encryption; wireGuard: its edge nodes
	// hold a WireGuard device (it has at least one encrypted pair).
	asks, wireGuard bool
}

// Compute plans every node of every cluster. t must be a valid, defaulted
// topology. The result is deterministic: the same input yields the same
// plan, and a node whose inputs did not change gets an identical config.
func Compute(t *v1alpha1.TopologySpec, facts Facts) *Plan {
	return ComputeAt(t, facts, time.Time{})
}

// ComputeAt is Compute at time now, which the catch-up with the agents'
// gateway choices needs (catchup.go); a zero now does not check how long
// the agents' moves lasted. It is pure.
func ComputeAt(t *v1alpha1.TopologySpec, facts Facts, now time.Time) *Plan {
	p := &planner{spec: t, facts: facts, now: now, configs: map[string]map[string]*v1alpha1.NodeConfig{}}
	return p.run()
}

type planner struct {
	spec     *v1alpha1.TopologySpec
	facts    Facts
	now      time.Time
	configs  map[string]map[string]*v1alpha1.NodeConfig // cluster → node → config
	problems []string
	gateways map[string]*clusterState
}

func (p *planner) problem(format string, args ...any) {
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

func (p *planner) run() *Plan {
	var clusters []*clusterState
	for i := range p.spec.Clusters {
		c := &p.spec.Clusters[i]
		f, ok := p.facts[c.Name]
		if !c.NetworkEnabled() || !ok {
			continue
		}
		nodes := slices.Clone(f.Nodes)
		slices.SortFunc(nodes, func(a, b Node) int { return cmp.Compare(a.Name, b.Name) })
		cs := &clusterState{spec: c, nodes: nodes, endpoints: map[string]*v1alpha1.PeerEndpoint{}}
		if c.Network.Mode == v1alpha1.ModeGateway {
			current, split := gatewayInForce(c.Name, p.facts, p.now)
			if split != "" {
				p.problem("%s", split)
			}
			if fs := familySplits(c.Name, p.facts); fs != "" {
				p.problem("%s", fs)
			}
			cs.gateway, cs.standby = electGateway(c, nodes, current, aliveInDataPlane(c.Name, p.facts, current))
			if cs.gateway == "" {
				p.problem("cluster %s: no node with an address matches gateway.nodeSelector; the cluster is unreachable until one does", c.Name)
			}
		}
		cs.asks = p.spec.ClusterEncryption(c) == v1alpha1.EncryptionWireGuard
		clusters = append(clusters, cs)
		p.configs[c.Name] = map[string]*v1alpha1.NodeConfig{}
		for _, n := range nodes {
			p.configs[c.Name][n.Name] = &v1alpha1.NodeConfig{}
			p.configs[c.Name][n.Name].Name = n.Name
		}
	}
	p.checkKeys(clusters)
	p.encryption(clusters)
	for _, fam := range families(&p.spec.Network) {
		if !fam.bridgeCIDR.IsValid() || !fam.localCIDR.IsValid() {
			p.problem("the %s bridge or local CIDR is invalid; %s is not planned", fam.name, fam.name)
			continue
		}
		p.planFamily(fam, clusters)
	}
	p.checkCollisions()
	out := p.result(clusters)
	p.expandLegacy(out, clusters)
	return out
}

// electGateway picks the gateway deterministically among the candidates
// (nodes matching gateway.nodeSelector with an address), Ready ones first in
// name order, then NotReady ones. The gateway in force stays while it is a
// candidate, even NotReady, while alive says the data plane still sends
// through it (aliveInDataPlane: static stability, a control plane that
// comes back must not undo what the data plane does), or unless it went
// NotReady alone: only a candidate that was already Ready when the gateway
// fell (strictly earlier: the times are whole seconds) takes over. A
// control plane that cannot hear its kubelets turns every node NotReady at
// once, and they come back one by one: that moves no traffic.
func electGateway(c *v1alpha1.ClusterSpec, nodes []Node, current string, alive bool) (string, []string) {
	var ready, notReady []string
	var cur *Node
	for i, n := range nodes {
		if len(n.InternalIPs) == 0 || !matchesSelector(n.Labels, c.Network.Gateway.NodeSelector) {
			continue
		}
		if n.Ready {
			ready = append(ready, n.Name)
		} else {
			notReady = append(notReady, n.Name)
		}
		if n.Name == current {
			cur = &nodes[i]
		}
	}
	candidates := slices.Concat(ready, notReady)
	if len(candidates) == 0 {
		return "", nil
	}
	if cur != nil && (cur.Ready || alive || !slices.ContainsFunc(nodes, func(o Node) bool {
		return o.Ready && slices.Contains(ready, o.Name) && (cur.ReadySince.IsZero() || o.ReadySince.Before(cur.ReadySince))
	})) {
		i := slices.Index(candidates, current)
		candidates = slices.Concat([]string{current}, candidates[:i], candidates[i+1:])
	}
	standby := candidates[1:min(len(candidates), int(c.Network.Gateway.Replicas))]
	return candidates[0], slices.Clone(standby)
}

func matchesSelector(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func underlayOf(n *Node, fam family) (netip.Addr, bool) {
	for _, a := range n.InternalIPs {
		if fam.matches(a) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// realCIDRs returns the cluster's topology ranges of one family.
func realCIDRs(values []string, fam family) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range values {
		if pr, err := netip.ParsePrefix(s); err == nil && fam.matches(pr.Addr()) {
			out = append(out, pr.Masked())
		}
	}
	return out
}

// globalOf translates a real range of cluster c to what other clusters
// route: its GlobalCIDR image when a mapping covers it, else itself.
func globalOf(c *v1alpha1.ClusterSpec, pr netip.Prefix) netip.Prefix {
	for real, global := range c.Network.GlobalCIDRs {
		rp, err1 := netip.ParsePrefix(real)
		gp, err2 := netip.ParsePrefix(global)
		if err1 == nil && err2 == nil && rp.Contains(pr.Addr()) && pr.Bits() >= rp.Bits() {
			return mapPrefix(pr, rp, gp)
		}
	}
	return pr
}

func (p *planner) planFamily(fam family, all []*clusterState) {
	for _, cs := range all {
		if fam.usedBy(cs.spec.Network.IPFamily) {
			p.endpoints(cs, fam)
			p.planCluster(cs, fam)
		}
	}
}

// endpoints fills in which of a cluster's nodes other clusters tunnel to in
// one family (a tunnel each), the ranges each one receives and the
// cluster's whole ranges.
func (p *planner) endpoints(cs *clusterState, fam family) {
	c := cs.spec
	cs.mappings = nil
	for _, real := range slices.Sorted(maps.Keys(c.Network.GlobalCIDRs)) {
		if rp, err := netip.ParsePrefix(real); err == nil && fam.matches(rp.Addr()) {
			cs.mappings = append(cs.mappings, v1alpha1.NATMapping{RealCIDR: real, GlobalCIDR: c.Network.GlobalCIDRs[real]})
		}
	}
	services := mapAll(c, realCIDRs(c.Network.ServiceCIDRs, fam))
	for _, pr := range slices.Concat(mapAll(c, realCIDRs(c.Network.PodCIDRs, fam)), services) {
		cs.cidrs = append(cs.cidrs, pr.String())
	}
	tunnels := 0
	mk := func(n *Node, dsts []netip.Prefix) bool {
		ok := addTunnel(cs, n, fam, dsts)
		if ok {
			tunnels++
		}
		return ok
	}
	if c.Network.Mode == v1alpha1.ModeGateway {
		// Every candidate is an endpoint (a later release fails over down
		// the list); the cluster's CIDRs go to the first.
		for i := range cs.nodes {
			n := &cs.nodes[i]
			switch {
			case n.Name == cs.gateway && !mk(n, nil):
				p.problem("cluster %s: gateway %s has no %s InternalIP", c.Name, cs.gateway, fam.name)
			case slices.Contains(cs.standby, n.Name):
				mk(n, nil)
			}
		}
		return
	}
	// P2P: every node receives its own pod ranges, Ready or not (a NotReady
	// node may well forward: only its deletion withdraws its routes); the
	// first of them by name (a stable choice) also receives the service
	// ranges.
	pods := realCIDRs(c.Network.PodCIDRs, fam)
	for i := range cs.nodes {
		n := &cs.nodes[i]
		var dsts []netip.Prefix
		for _, pr := range n.PodCIDRs {
			if !fam.matches(pr.Addr()) {
				continue
			}
			if !insideAny(pr.Masked(), pods) {
				p.problem("cluster %s: node %s has pod range %s outside network.podCIDRs %v; it is not routed", c.Name, n.Name, pr, c.Network.PodCIDRs)
				continue
			}
			dsts = append(dsts, globalOf(c, pr.Masked()))
		}
		if tunnels == 0 {
			dsts = append(dsts, services...)
		}
		if !mk(n, dsts) {
			p.problem("cluster %s: node %s has no %s InternalIP; it is left out of the %s tunnels", c.Name, n.Name, fam.name, fam.name)
		}
	}
}

// insideAny tells whether pr lies within one of the ranges.
func insideAny(pr netip.Prefix, ranges []netip.Prefix) bool {
	for _, r := range ranges {
		if r.Bits() <= pr.Bits() && r.Contains(pr.Addr()) {
			return true
		}
	}
	return false
}

// addTunnel adds the node's cross-cluster device of one family to its
// endpoint (created on first use), with the ranges routed to it; false when
// the node has no address of the family.
func addTunnel(cs *clusterState, n *Node, fam family, dsts []netip.Prefix) bool {
	u, ok := underlayOf(n, fam)
	if !ok {
		return false
	}
	e := cs.endpoints[n.Name]
	if e == nil {
		e = &v1alpha1.PeerEndpoint{Name: n.Name}
		cs.endpoints[n.Name] = e
	}
	e.Tunnels = append(e.Tunnels, v1alpha1.PeerTunnel{
		Device: fam.bridgeDev, UnderlayIP: u.String(),
		Address: keepHostBits(u, fam.bridgeCIDR).String(), MAC: deviceMAC(cs.spec.Name, n.Name, fam.bridgeDev),
	})
	for _, d := range dsts {
		e.CIDRs = append(e.CIDRs, d.String())
	}
	if cs.wireGuard && n.WireGuardKey != "" && e.WireGuard == nil {
		e.WireGuard = &v1alpha1.PeerWireGuard{PublicKey: n.WireGuardKey, Port: v1alpha1.DefaultWireGuardPort, NextPublicKey: n.WireGuardNextKey}
	}
	return true
}

func mapAll(c *v1alpha1.ClusterSpec, ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, len(ps))
	for i, pr := range ps {
		out[i] = globalOf(c, pr)
	}
	return out
}

func (p *planner) device(cs *clusterState, n *Node, fam family, name string, vx v1alpha1.VXLANDevice, cidr netip.Prefix) (v1alpha1.Device, bool) {
	u, ok := underlayOf(n, fam)
	if !ok {
		return v1alpha1.Device{}, false
	}
	return v1alpha1.Device{
		Name: name, VNI: vx.VNI, Port: vx.Port, MAC: deviceMAC(cs.spec.Name, n.Name, name),
		MTU: p.spec.Network.VXLAN.MTU, UnderlayIP: u.String(), NIC: cs.spec.Network.NIC,
		Addresses: []string{netip.PrefixFrom(keepHostBits(u, cidr), cidr.Bits()).String()},
	}, true
}

// planCluster writes the configs of one cluster's nodes for one family:
// what is each node's own. What the node needs of other clusters is named
// as a path (spec.peers) and derived from their ClusterPeers (see package
// peering), so that a node joining elsewhere changes no config here.
func (p *planner) planCluster(cs *clusterState, fam family) {
	t := &familyTables{gateway: cs.spec.Network.Mode == v1alpha1.ModeGateway, locals: map[string]v1alpha1.Device{}}
	for _, pr := range slices.Concat(realCIDRs(cs.spec.Network.PodCIDRs, fam), realCIDRs(cs.spec.Network.ServiceCIDRs, fam)) {
		t.own = append(t.own, pr.String())
	}
	// Clipped, so that appending a second family's entries to a node's
	// shared slice copies it instead of writing into the shared array.
	t.own = slices.Clip(t.own)
	if t.gateway {
		p.gatewayTables(cs, fam, t)
	}
	for i := range cs.nodes {
		p.planNode(cs, fam, &cs.nodes[i], t)
	}
}

// familyTables are what the nodes of one cluster share for one family.
type familyTables struct {
	gateway bool
	// own are the cluster's real pod and service ranges (every node's
	// localCIDRs).
	own []string
	// locals are every node's local devices.
	locals map[string]v1alpha1.Device
	// candidates are the gateway candidates (active first) and gwLocals
	// the local devices of those that have one, in the same order: every
	// candidate is kept hot (gateway HA).
	candidates []string
	gwLocals   []candidateLocal
}

// candidateLocal is a gateway candidate's local device.
type candidateLocal struct {
	name string
	dev  v1alpha1.Device
}

// gatewayTables fills the local devices of a Gateway cluster's nodes.
func (p *planner) gatewayTables(cs *clusterState, fam family, t *familyTables) {
	t.candidates = gatewaysOf(cs)
	for i := range cs.nodes {
		n := &cs.nodes[i]
		if d, ok := p.device(cs, n, fam, fam.localDev, fam.local, fam.localCIDR); ok {
			t.locals[n.Name] = d
		}
	}
	for _, name := range t.candidates {
		if d, ok := t.locals[name]; ok {
			t.gwLocals = append(t.gwLocals, candidateLocal{name: name, dev: d})
		}
	}
}

// planNode writes one node's part of the family: the bridge device and a
// path straight to the remote endpoints on an edge node (every node in P2P,
// the gateway), the local device and the way to the gateway in a Gateway
// cluster.
func (p *planner) planNode(cs *clusterState, fam family, n *Node, t *familyTables) {
	c := cs.spec
	spec := &p.configs[c.Name][n.Name].Spec
	candidate := t.gateway && slices.Contains(t.candidates, n.Name)
	edge := !t.gateway || candidate
	if _, ok := underlayOf(n, fam); !ok {
		if !edge { // an edge node is reported with the endpoints
			p.problem("cluster %s: node %s has no %s InternalIP; it gets no %s devices", c.Name, n.Name, fam.name, fam.name)
		}
		return
	}
	spec.LocalCIDRs = share(spec.LocalCIDRs, t.own)
	if edge {
		dev, _ := p.device(cs, n, fam, fam.bridgeDev, fam.bridge, fam.bridgeCIDR)
		spec.Devices = append(spec.Devices, dev)
		addPath(spec, c.Name, v1alpha1.PeerPath{Device: fam.bridgeDev})
		p.wireGuardDevice(cs, n, spec)
		if len(cs.mappings) > 0 {
			spec.NAT.Mappings = append(spec.NAT.Mappings, cs.mappings...)
			spec.NAT.EdgeDevices = append(spec.NAT.EdgeDevices, fam.bridgeDev)
		}
	}
	if !t.gateway {
		return
	}
	spec.Devices = append(spec.Devices, t.locals[n.Name])
	switch {
	case candidate:
		p.gatewayNode(cs, fam, n, spec, t)
		if len(t.gwLocals) > 1 {
			// Its own traffic leaves through the candidate in use (itself
			// when it is the one), where the replies come back: the
			// GlobalCIDR NAT of a flow stays on one node. No Via: an agent
			// of an earlier release ignores the path.
			path := v1alpha1.PeerPath{Device: fam.localDev}
			for _, gl := range t.gwLocals {
				path.Candidates = append(path.Candidates, v1alpha1.PathCandidate{Name: gl.name, Via: strings.Split(gl.dev.Addresses[0], "/")[0]})
			}
			addPath(spec, c.Name, path)
		}
	case len(t.gwLocals) > 0:
		// Every candidate's local device is reachable (hot standbys); the
		// path names them in order and Via the first (what an agent of an
		// earlier release routes through).
		path := v1alpha1.PeerPath{Device: fam.localDev}
		for _, gl := range t.gwLocals {
			spec.FDB = append(spec.FDB, v1alpha1.FDBEntry{MAC: gl.dev.MAC, Dst: gl.dev.UnderlayIP, Device: fam.localDev})
			via := strings.Split(gl.dev.Addresses[0], "/")[0]
			spec.Neighbors = append(spec.Neighbors, v1alpha1.Neighbor{IP: via, MAC: gl.dev.MAC, Device: fam.localDev})
			path.Candidates = append(path.Candidates, v1alpha1.PathCandidate{Name: gl.name, Via: via})
		}
		path.Via = path.Candidates[0].Via
		if len(path.Candidates) == 1 {
			path.Candidates = nil // nothing to choose: the earlier form
		}
		addPath(spec, c.Name, path)
	}
}

// addPath names one way the node reaches remote clusters.
func addPath(spec *v1alpha1.NodeConfigSpec, cluster string, path v1alpha1.PeerPath) {
	if spec.Peers == nil {
		spec.Peers = &v1alpha1.PeeringSpec{Cluster: cluster}
	}
	spec.Peers.Paths = append(spec.Peers.Paths, path)
}

// gatewayNode adds what only the gateway has: every other node of its
// cluster over the local device, and masquerading of what they send that is
// not from a pod range.
func (p *planner) gatewayNode(cs *clusterState, fam family, n *Node, spec *v1alpha1.NodeConfigSpec, t *familyTables) {
	for j := range cs.nodes {
		o := &cs.nodes[j]
		if o.Name == n.Name {
			continue
		}
		if od, ok := t.locals[o.Name]; ok {
			spec.FDB = append(spec.FDB, v1alpha1.FDBEntry{MAC: od.MAC, Dst: od.UnderlayIP, Device: fam.localDev})
			spec.Neighbors = append(spec.Neighbors, v1alpha1.Neighbor{IP: strings.Split(od.Addresses[0], "/")[0], MAC: od.MAC, Device: fam.localDev})
		}
	}
	except := slices.DeleteFunc(slices.Clone(cs.spec.Network.PodCIDRs), func(s string) bool {
		pr, err := netip.ParsePrefix(s)
		return err != nil || !fam.matches(pr.Addr())
	})
	spec.NAT.Masquerade = append(spec.NAT.Masquerade, v1alpha1.MasqueradeRule{Device: fam.bridgeDev, ExceptSources: except})
	// Remote host-network traffic (its source a remote tunnel address) that
	// this candidate forwards into the cluster is hidden behind the address
	// it leaves by: the replies then come back here, where the connection
	// was translated, even from a pod on another candidate (whose own
	// tunnel network would send them out untranslated).
	spec.NAT.MasqueradeSources = append(spec.NAT.MasqueradeSources, v1alpha1.SourceMasquerade{Device: fam.bridgeDev, Sources: []string{fam.bridgeCIDR.Masked().String()}})
}

// share returns src itself when dst is empty (no copy: the slice is shared
// read-only between nodes), else dst with src appended.
func share[T any](dst, src []T) []T {
	if len(dst) == 0 {
		return src
	}
	return append(dst, src...)
}

// checkCollisions reports device addresses and MACs that two devices share.
func (p *planner) checkCollisions() {
	addrs, macs := map[string]string{}, map[string]string{}
	for _, cluster := range slices.Sorted(maps.Keys(p.configs)) {
		for _, node := range slices.Sorted(maps.Keys(p.configs[cluster])) {
			for _, d := range p.configs[cluster][node].Spec.Devices {
				who := fmt.Sprintf("%s/%s %s", cluster, node, d.Name)
				scope := d.Name // local addresses only need be unique per cluster
				if d.Name == v1alpha1.DeviceLocal || d.Name == v1alpha1.DeviceLocal6 {
					scope = cluster + "/" + d.Name
				}
				for _, a := range d.Addresses {
					if other, dup := addrs[scope+" "+a]; dup {
						p.problem("address %s of %s collides with %s: their underlay addresses share the host bits kept in the device range; pick a larger range", a, who, other)
					} else {
						addrs[scope+" "+a] = who
					}
				}
				if other, dup := macs[d.MAC]; dup {
					p.problem("MAC %s of %s collides with %s", d.MAC, who, other)
				} else {
					macs[d.MAC] = who
				}
			}
		}
	}
}

func (p *planner) result(clusters []*clusterState) *Plan {
	out := &Plan{Problems: p.problems}
	for _, cs := range clusters {
		cp := ClusterPlan{Name: cs.spec.Name, Gateway: cs.gateway, Standby: cs.standby, Peers: peersOf(cs)}
		for _, n := range cs.nodes {
			nc := p.configs[cs.spec.Name][n.Name]
			slices.SortFunc(nc.Spec.Devices, func(a, b v1alpha1.Device) int { return cmp.Compare(a.Name, b.Name) })
			cp.Configs = append(cp.Configs, *nc)
		}
		out.Clusters = append(out.Clusters, cp)
	}
	return out
}
