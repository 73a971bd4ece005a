package peering

import (
	"net/netip"
	"slices"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Choice is which gateway candidate a node currently sends through (gateway
// HA): its agent probes the candidates and moves on when one stops
// answering. A cluster or device absent here, or naming no usable
// candidate, uses the first candidate of the list (the plan's active one).
type Choice struct {
	// Remote maps a remote Gateway-mode cluster and the cross-cluster
	// device its routes leave over (one per family in dual-stack) to the
	// candidate (node name) those routes go to.
	Remote map[RemoteKey]string
	// Local maps a path device (vx-local, vx-local-6) to the candidate of
	// the node's own gateway its routes go to.
	Local map[string]string
}

// RemoteKey names the candidate list of a remote cluster over one device.
type RemoteKey struct {
	Cluster, Device string
}

// pathVia is the next hop of a path: the chosen candidate's address, or Via.
func (c Choice) pathVia(path v1alpha1.PeerPath) string {
	if name, ok := c.Local[path.Device]; ok {
		for _, pc := range path.Candidates {
			if pc.Name == name {
				return pc.Via
			}
		}
	}
	if len(path.Candidates) > 0 && path.Via == "" {
		return path.Candidates[0].Via
	}
	return path.Via
}

// ownPath says a path is a gateway candidate's way through the candidate
// its cluster's traffic uses (Candidates without Via; an agent of an
// earlier release ignores it): the node sends its own traffic through the
// chosen candidate, so that it leaves where remote clusters send the
// replies (GlobalCIDR NAT keeps state per node).
func ownPath(path v1alpha1.PeerPath) bool { return path.Via == "" && len(path.Candidates) > 0 }

// ownAddr says a is one of the node's device addresses.
func ownAddr(spec *v1alpha1.NodeConfigSpec, a netip.Addr) bool {
	for _, d := range spec.Devices {
		for _, s := range d.Addresses {
			if pr, err := netip.ParsePrefix(s); err == nil && pr.Addr() == a {
				return true
			}
		}
	}
	return false
}

// localFamilies are the families (by is-IPv4) a gateway candidate sends
// through another candidate: its cross-cluster path carries no routes of
// them, only the FDB and neighbour entries that keep it hot.
func localFamilies(spec *v1alpha1.NodeConfigSpec, c Choice) map[bool]bool {
	out := map[bool]bool{}
	for _, path := range spec.Peers.Paths {
		if !ownPath(path) {
			continue
		}
		if a, err := netip.ParseAddr(c.pathVia(path)); err == nil && !ownAddr(spec, a) {
			out[a.Is4()] = true
		}
	}
	return out
}

// chooseGateway is the candidate of remote Gateway cluster r the routes
// through dev go to: chosen when it has a tunnel on dev and is reachable
// (usable: e.g. a WireGuard pair whose key is published), else the first
// candidate that is.
func chooseGateway(r *remote, dev, chosen string, usable func(*endpoint) bool) string {
	ok := func(name string) bool {
		e, found := r.endpoints[name]
		if !found || !usable(e) {
			return false
		}
		_, found = e.tunnels[dev]
		return found
	}
	if slices.Contains(r.gateways, chosen) && ok(chosen) {
		return chosen
	}
	for _, g := range r.gateways {
		if ok(g) {
			return g
		}
	}
	return ""
}

// Group is one ordered list of gateway candidates a node may send through:
// a remote Gateway cluster's (over a cross-cluster device) or its own
// cluster's (over its path to its gateway).
type Group struct {
	// Cluster is the Gateway-mode cluster the candidates belong to.
	Cluster string
	// Device is the local device the candidates are reached over.
	Device string
	// Local says the group is the node's own gateway (Choice.Local, keyed
	// by Device); otherwise it is a remote cluster (Choice.Remote).
	Local bool
	// Candidates in order of preference, with the address each answers
	// probes on (its device address on Device).
	Candidates []Candidate
}

// Candidate is one gateway candidate and its probe address.
type Candidate struct {
	Name string
	Addr netip.Addr
}

// Groups returns the candidate lists a node with this spec may send
// through, given the peers it reads (from Select): only lists of more
// than one reachable candidate (an encrypted pair's candidate without a
// published key is left out), for there is nothing to choose otherwise. It is
// pure; a field that does not parse leaves its candidate out.
func Groups(spec *v1alpha1.NodeConfigSpec, peers []v1alpha1.ClusterPeers) []Group {
	if spec.Peers == nil {
		return nil
	}
	remotes, _ := merge(peers) // what does not parse is reported by Derive
	var out []Group
	for _, path := range spec.Peers.Paths {
		if path.Via != "" || len(path.Candidates) > 0 {
			g := Group{Cluster: spec.Peers.Cluster, Device: path.Device, Local: true}
			for _, pc := range path.Candidates {
				if a, err := netip.ParseAddr(pc.Via); err == nil {
					g.Candidates = append(g.Candidates, Candidate{Name: pc.Name, Addr: a})
				}
			}
			if len(g.Candidates) > 1 {
				out = append(out, g)
			}
			continue
		}
		for _, r := range remotes {
			if r.mode != v1alpha1.ModeGateway {
				continue
			}
			g := Group{Cluster: r.name, Device: path.Device}
			for _, name := range r.gateways {
				if e, ok := r.endpoints[name]; ok && reachable(spec, r, e, spec.WireGuard != nil) {
					if t, ok := e.tunnels[path.Device]; ok {
						g.Candidates = append(g.Candidates, Candidate{Name: name, Addr: t.addr})
					}
				}
			}
			if len(g.Candidates) > 1 {
				out = append(out, g)
			}
		}
	}
	return out
}
