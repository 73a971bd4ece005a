package peering

// Transit: a gateway candidate forwards its cluster's traffic out its own
// tunnel (gateway HA, issue 15).
//
// Nodes behind the gateway and remote clusters each choose a candidate on
// their own probes, so for a moment they may disagree: a node sends through
// candidate B while B itself still sends through candidate A. B then used to
// hand the node's packets to A over vx-local, already translated by B's
// conntrack entry (which took its NETMAP binding from the remote side's
// packets entering through B), and A masqueraded them behind its own tunnel
// address: the receiver answered with a reset. Every candidate is a hot
// standby (vx-bridge, NAT, FDB and neighbour entries of every remote node),
// so a candidate never needs a sibling for transit: what arrives from its
// cluster's nodes on its path device leaves through its own cross-cluster
// devices, translated there. Only what the candidate originates itself (its
// pods, its host) follows its Choice.Local. The agent holds Transit as a
// policy rule per path device (iif) and a table of its own.

import (
	"net/netip"
	"slices"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Transit is how a gateway candidate forwards traffic that arrives from its
// own cluster's nodes and goes to other clusters.
type Transit struct {
	// Devices are the candidate's paths to its cluster's gateway
	// (vx-local, vx-local-6): traffic arriving on them is transit.
	Devices []string
	// Routes send the remote ranges over the candidate's own cross-cluster
	// devices, as if it were the candidate in use.
	Routes []v1alpha1.Route
}

// Empty says there is nothing to hold (the node is no candidate).
func (t Transit) Empty() bool { return len(t.Devices) == 0 }

// TransitOf returns the Transit of a node with this spec: empty unless the
// node is a candidate of one of its own paths (a path with candidates and no
// via, one of which is this node's device address). choice.Remote picks the
// remote candidates as for the node's own traffic; choice.Local is ignored
// (transit never goes to a sibling). It is pure; spec and peers are not
// modified.
func TransitOf(spec *v1alpha1.NodeConfigSpec, peers []v1alpha1.ClusterPeers, choice Choice) (Transit, error) {
	var t Transit
	if spec.Peers == nil {
		return t, nil
	}
	local := map[string]string{}
	for _, path := range spec.Peers.Paths {
		if !ownPath(path) {
			continue
		}
		for _, pc := range path.Candidates {
			if a, err := netip.ParseAddr(pc.Via); err == nil && ownAddr(spec, a) {
				local[path.Device] = pc.Name
				t.Devices = append(t.Devices, path.Device)
				break
			}
		}
	}
	if t.Empty() {
		return t, nil
	}
	full, err := derive(spec, peers, Choice{Remote: choice.Remote, Local: local}, spec.WireGuard != nil)
	if err != nil {
		return Transit{}, err
	}
	for _, r := range full.Routes {
		if crossDevice(spec, r.Device) && !slices.Contains(spec.Routes, r) {
			t.Routes = append(t.Routes, r)
		}
	}
	slices.Sort(t.Devices)
	return t, nil
}

// crossDevice says dev is one of the node's cross-cluster paths (no via,
// no candidates).
func crossDevice(spec *v1alpha1.NodeConfigSpec, dev string) bool {
	for _, path := range spec.Peers.Paths {
		if path.Device == dev {
			return path.Via == "" && len(path.Candidates) == 0
		}
	}
	return false
}
