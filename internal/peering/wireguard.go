package peering

import (
	"cmp"
	"net/netip"
	"slices"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// WireGuard peers.
//
// A node with spec.wireGuard reaches a remote endpoint through WireGuard
// when the pair is encrypted: its own cluster asks (spec.wireGuard
// encryptAll) or the remote cluster does (ClusterPeers spec.encryption).
// Such an endpoint becomes one WireGuard peer: its published key, its
// underlay address and port as the endpoint, its underlay addresses as
// host prefixes as the allowed IPs (the VXLAN tunnel is all that crosses
// the device; never 0.0.0.0/0). An endpoint of an encrypted pair without a
// published key, or any endpoint of an asking cluster when the node has no
// WireGuard device, is left out entirely: no FDB entry, no route (fail
// closed), never a clear tunnel.

// encrypted reports whether the node reaches remote cluster r through
// WireGuard only.
func encrypted(spec *v1alpha1.NodeConfigSpec, r *remote) bool {
	return r.encryption == v1alpha1.EncryptionWireGuard || (spec.WireGuard != nil && spec.WireGuard.EncryptAll)
}

// reachable reports whether endpoint e of remote r may be tunnelled to: in
// clear when the pair is not encrypted, else only with a key on both sides
// (device: the node tunnels through its WireGuard device).
func reachable(spec *v1alpha1.NodeConfigSpec, r *remote, e *endpoint, device bool) bool {
	return !encrypted(spec, r) || (device && spec.WireGuard != nil && e.wg != nil)
}

// WireGuardPeers returns the WireGuard peers of a node with this spec,
// sorted by name: every endpoint it tunnels to over a cross-cluster path
// whose pair is encrypted and whose key is published. peers should come
// from Select. It is pure.
func WireGuardPeers(spec *v1alpha1.NodeConfigSpec, peers []v1alpha1.ClusterPeers) ([]v1alpha1.WireGuardPeer, error) {
	remotes, err := merge(peers)
	if err != nil {
		return nil, err
	}
	return wireGuardPeers(spec, remotes), nil
}

func wireGuardPeers(spec *v1alpha1.NodeConfigSpec, remotes []*remote) []v1alpha1.WireGuardPeer {
	if spec.WireGuard == nil || spec.Peers == nil {
		return nil
	}
	byName := map[string]*v1alpha1.WireGuardPeer{}
	for _, path := range spec.Peers.Paths {
		if path.Via != "" || ownPath(path) {
			continue
		}
		for _, r := range remotes {
			if !encrypted(spec, r) {
				continue
			}
			for _, name := range edgeNames(r) {
				e := r.endpoints[name]
				t, ok := e.tunnels[path.Device]
				if !ok || e.wg == nil {
					continue
				}
				id := r.name + "/" + name
				p := byName[id]
				if p == nil {
					p = &v1alpha1.WireGuardPeer{Name: id, PublicKey: e.wg.PublicKey, NextPublicKey: e.wg.NextPublicKey}
					byName[id] = p
				}
				p.AllowedIPs = append(p.AllowedIPs, netip.PrefixFrom(t.underlay, t.underlay.BitLen()).String())
				if p.Endpoint == "" || t.underlay.Is4() {
					p.Endpoint = netip.AddrPortFrom(t.underlay, uint16(e.wg.Port)).String()
				}
			}
		}
	}
	out := make([]v1alpha1.WireGuardPeer, 0, len(byName))
	for _, p := range byName {
		slices.Sort(p.AllowedIPs)
		p.AllowedIPs = slices.Compact(p.AllowedIPs)
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b v1alpha1.WireGuardPeer) int { return cmp.Compare(a.Name, b.Name) })
	if len(out) == 0 {
		return nil
	}
	return out
}

// edgeNames are the endpoints of r a node tunnels to: every gateway
// candidate of a Gateway cluster (all are kept hot, gateway HA), every
// endpoint in P2P.
func edgeNames(r *remote) []string {
	if r.mode == v1alpha1.ModeGateway {
		var out []string
		for _, g := range r.gateways {
			if _, ok := r.endpoints[g]; ok && !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
		return out
	}
	return r.names
}
