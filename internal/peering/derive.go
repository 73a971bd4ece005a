package peering

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Select returns, sorted by name, the objects of all that a node with this
// spec reads: those of its topology (by label, when spec.peers names one)
// that describe another cluster. Without spec.peers it returns none.
func Select(spec *v1alpha1.NodeConfigSpec, all []v1alpha1.ClusterPeers) []v1alpha1.ClusterPeers {
	if spec.Peers == nil {
		return nil
	}
	var out []v1alpha1.ClusterPeers
	for _, p := range all {
		if p.Spec.Cluster == spec.Peers.Cluster {
			continue
		}
		if t := spec.Peers.Topology; t != "" && p.Labels[v1alpha1.LabelTopology] != t {
			continue
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b v1alpha1.ClusterPeers) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// remote is one remote cluster, its shards merged.
type remote struct {
	name string
	mode v1alpha1.NetworkMode
	// encryption is what the cluster asks for (see wireguard.go): WireGuard
	// when any of its shards says so.
	encryption v1alpha1.Encryption
	cidrs      []netip.Prefix
	gateways   []string
	endpoints  map[string]*endpoint
	names      []string // endpoint names, sorted
}

// endpoint is a PeerEndpoint with its fields parsed.
type endpoint struct {
	tunnels map[string]tunnel // by device
	cidrs   []netip.Prefix
	wg      *v1alpha1.PeerWireGuard // nil: no key published
}

type tunnel struct {
	underlay, addr netip.Addr
	mac            string
}

// Derive returns spec with the entries the peers imply added: the complete
// NodeConfigSpec the node holds. peers should come from Select. It is pure;
// spec and peers are not modified.
func Derive(spec *v1alpha1.NodeConfigSpec, peers []v1alpha1.ClusterPeers) (v1alpha1.NodeConfigSpec, error) {
	return derive(spec, peers, Choice{}, spec.WireGuard != nil)
}

// DeriveWith is Derive with the gateway candidates the agent currently
// sends through (gateway HA, see Choice): every candidate of a remote
// Gateway cluster gets its FDB and neighbour entries, and the routes go to
// the chosen one; a path with candidates routes via the chosen candidate.
// It is pure; spec and peers are not modified.
func DeriveWith(spec *v1alpha1.NodeConfigSpec, peers []v1alpha1.ClusterPeers, choice Choice) (v1alpha1.NodeConfigSpec, error) {
	return derive(spec, peers, choice, spec.WireGuard != nil)
}

// DeriveWithoutWireGuard is Derive for an agent that cannot hold a
// WireGuard device whatever spec says (one of an earlier release): no
// entry to an endpoint of an encrypted pair (it would send to it in clear),
// and no WireGuard peers. It is pure.
func DeriveWithoutWireGuard(spec *v1alpha1.NodeConfigSpec, peers []v1alpha1.ClusterPeers) (v1alpha1.NodeConfigSpec, error) {
	return derive(spec, peers, Choice{}, false)
}

// derive is DeriveWith; device says whether the node tunnels through its
// WireGuard device.
func derive(spec *v1alpha1.NodeConfigSpec, peers []v1alpha1.ClusterPeers, choice Choice, device bool) (v1alpha1.NodeConfigSpec, error) {
	out := *spec
	if spec.Peers == nil {
		return out, nil
	}
	remotes, err := merge(peers)
	if err != nil {
		return out, err
	}
	out.Routes, out.FDB, out.Neighbors = slices.Clone(spec.Routes), slices.Clone(spec.FDB), slices.Clone(spec.Neighbors)
	viaLocal := localFamilies(spec, choice)
	for _, path := range spec.Peers.Paths {
		if ownPath(path) {
			// A gateway candidate's way through its cluster's chosen
			// candidate: routes only when that is another node (then its
			// cross-cluster path carries no routes of the family).
			v := choice.pathVia(path)
			if a, err := netip.ParseAddr(v); err == nil && !ownAddr(spec, a) {
				path.Via = v
			} else {
				continue
			}
		}
		if path.Via != "" {
			v := choice.pathVia(path)
			via, err := netip.ParseAddr(v)
			if err != nil {
				return out, fmt.Errorf("spec.peers: path %s: via %q: %w", path.Device, v, err)
			}
			for _, r := range remotes {
				for _, c := range r.cidrs {
					if c.Addr().Is4() == via.Is4() {
						out.Routes = append(out.Routes, v1alpha1.Route{Dst: c.String(), Via: via.String(), Device: path.Device})
					}
				}
			}
			continue
		}
		for _, r := range remotes {
			tunnelTo(&out, r, path.Device, choice.Remote[RemoteKey{r.name, path.Device}], viaLocal, spec, device)
		}
	}
	if spec.WireGuard != nil && device {
		wg := *spec.WireGuard
		wg.Peers = slices.Concat(spec.WireGuard.Peers, wireGuardPeers(spec, remotes))
		out.WireGuard = &wg
	}
	sortAndDedup(&out)
	return out, nil
}

// tunnelTo adds the entries that reach remote cluster r through dev; chosen
// names the gateway candidate to route through ("": the first); device
// says whether the node tunnels through its WireGuard device.
func tunnelTo(out *v1alpha1.NodeConfigSpec, r *remote, dev, chosen string, viaLocal map[bool]bool, spec *v1alpha1.NodeConfigSpec, device bool) {
	add := func(e *endpoint, cidrs []netip.Prefix) {
		t, ok := e.tunnels[dev]
		if !ok || !reachable(spec, r, e, device) {
			return
		}
		if viaLocal[t.addr.Is4()] {
			cidrs = nil // the family leaves through another candidate
		}
		out.FDB = append(out.FDB, v1alpha1.FDBEntry{MAC: t.mac, Dst: t.underlay.String(), Device: dev})
		out.Neighbors = append(out.Neighbors, v1alpha1.Neighbor{IP: t.addr.String(), MAC: t.mac, Device: dev})
		for _, c := range cidrs {
			if c.Addr().Is4() == t.addr.Is4() {
				out.Routes = append(out.Routes, v1alpha1.Route{Dst: c.String(), Via: t.addr.String(), Device: dev})
			}
		}
	}
	if r.mode == v1alpha1.ModeGateway {
		// Every candidate is kept hot (FDB and neighbour entries); the
		// routes go to the chosen one.
		route := chooseGateway(r, dev, chosen, func(e *endpoint) bool { return reachable(spec, r, e, device) })
		for _, g := range r.gateways {
			if e, ok := r.endpoints[g]; ok {
				if g == route {
					add(e, r.cidrs)
				} else {
					add(e, nil)
				}
			}
		}
		return
	}
	for _, name := range r.names {
		e := r.endpoints[name]
		add(e, e.cidrs)
	}
}

// merge groups the objects by remote cluster (sorted by name) and parses
// them; an unparseable field is an error naming the object.
func merge(peers []v1alpha1.ClusterPeers) ([]*remote, error) {
	byName := map[string]*remote{}
	var errs []error
	for i := range peers {
		p := &peers[i]
		r := byName[p.Spec.Cluster]
		if r == nil {
			r = &remote{name: p.Spec.Cluster, mode: p.Spec.Mode, endpoints: map[string]*endpoint{}}
			byName[r.name] = r
		}
		if p.Spec.Encryption == v1alpha1.EncryptionWireGuard {
			// Shards that disagree (one written before the change): the
			// cluster asks when any of them says so (fail closed).
			r.encryption = v1alpha1.EncryptionWireGuard
		}
		if len(r.gateways) == 0 {
			r.gateways = p.Spec.Gateways
		}
		for _, c := range p.Spec.CIDRs {
			pr, err := netip.ParsePrefix(c)
			if err != nil {
				errs = append(errs, fmt.Errorf("ClusterPeers %s: cidr %q: %w", p.Name, c, err))
				continue
			}
			if !slices.Contains(r.cidrs, pr.Masked()) {
				r.cidrs = append(r.cidrs, pr.Masked())
			}
		}
		for _, pe := range p.Spec.Endpoints {
			if _, dup := r.endpoints[pe.Name]; dup {
				continue
			}
			e, err := parseEndpoint(pe)
			if err != nil {
				errs = append(errs, fmt.Errorf("ClusterPeers %s: endpoint %s: %w", p.Name, pe.Name, err))
				continue
			}
			r.endpoints[pe.Name] = e
			r.names = append(r.names, pe.Name)
		}
	}
	var out []*remote
	for _, r := range byName {
		slices.Sort(r.names)
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *remote) int { return cmp.Compare(a.name, b.name) })
	return out, errors.Join(errs...)
}

func parseEndpoint(pe v1alpha1.PeerEndpoint) (*endpoint, error) {
	e := &endpoint{tunnels: map[string]tunnel{}, wg: pe.WireGuard}
	for _, c := range pe.CIDRs {
		pr, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("cidr %q: %w", c, err)
		}
		e.cidrs = append(e.cidrs, pr.Masked())
	}
	for _, t := range pe.Tunnels {
		u, err1 := netip.ParseAddr(t.UnderlayIP)
		a, err2 := netip.ParseAddr(t.Address)
		mac, err3 := net.ParseMAC(t.MAC)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("tunnel %s: %w", t.Device, err)
		}
		if u.Is4() != a.Is4() {
			return nil, fmt.Errorf("tunnel %s: underlay %s and address %s are of different families", t.Device, u, a)
		}
		e.tunnels[t.Device] = tunnel{underlay: u, addr: a, mac: mac.String()}
	}
	return e, nil
}

// sortAndDedup orders the entry lists and drops exact duplicates.
func sortAndDedup(s *v1alpha1.NodeConfigSpec) {
	slices.SortFunc(s.Routes, func(a, b v1alpha1.Route) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Dst, b.Dst), cmp.Compare(a.Via, b.Via))
	})
	slices.SortFunc(s.FDB, func(a, b v1alpha1.FDBEntry) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Dst, b.Dst), cmp.Compare(a.MAC, b.MAC))
	})
	slices.SortFunc(s.Neighbors, func(a, b v1alpha1.Neighbor) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.IP, b.IP), cmp.Compare(a.MAC, b.MAC))
	})
	s.Routes, s.FDB, s.Neighbors = slices.Compact(s.Routes), slices.Compact(s.FDB), slices.Compact(s.Neighbors)
	if len(s.Routes) == 0 {
		s.Routes = nil
	}
	if len(s.FDB) == 0 {
		s.FDB = nil
	}
	if len(s.Neighbors) == 0 {
		s.Neighbors = nil
	}
}
