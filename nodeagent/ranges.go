package nodeagent

import (
	"fmt"
	"net/netip"
	"strings"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Design notes: which ranges the agent may route and address.
//
// A route or a device address is a claim on part of the node's address
// space: the kernel sends whatever falls in it into a tunnel. The agent
// refuses, before any write, the claims that would take what is not
// Kosmos's to take:
//
//   - a default destination (0.0.0.0/0, ::/0) or a device address whose
//     network is a default: it would take every destination;
//   - a destination or device network touching the special ranges
//     (unspecified, loopback, link-local, multicast, broadcast): the node
//     itself lives there;
//   - a destination or device network containing an underlay address, the
//     node's own (devices[].underlayIP) or a peer's (fdb[].dst): the tunnel
//     would be routed into itself;
//   - a device network that overlaps a routed destination, another device's
//     network, or the node's own cluster ranges (nat mappings' real CIDRs,
//     masquerade exceptions): the kernel's connected route for the address
//     would capture them (localCIDRs included);
//   - a destination that overlaps the cluster's own ranges (localCIDRs,
//     nat mappings' real CIDRs): the node's own pods or services would be
//     sent away;
//   - two routes to one destination through different next hops: the
//     kernel holds one route per destination;
//   - at apply time (checkHost), a destination or device network that
//     overlaps an address of the host's own interfaces (not the agent's
//     devices): the agent would capture the host's own networks.
//
// A device network is the address's prefix, masked (220.168.1.11/8 is
// 220.0.0.0/8): that is what the kernel routes to the device.

// specialRanges are where the node itself lives; no claim may touch them.
var specialRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("255.255.255.255/32"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// claim is a range the config routes or addresses, and where it is.
type claim struct {
	at     string
	prefix netip.Prefix
}

// ranges checks the routes' destinations and the devices' networks against
// each other and the config's underlay addresses and own ranges (see the
// design notes above). It expects the syntax checked already and skips what
// does not parse.
func (p *problems) ranges(spec *v1alpha1.NodeConfigSpec) {
	underlay := underlayAddrs(spec)
	dsts, nets := routeClaims(spec), deviceClaims(spec)
	for _, c := range append(append([]claim{}, dsts...), nets...) {
		p.claim(c, underlay)
	}
	own := ownRanges(spec)
	for _, d := range dsts {
		for _, o := range own {
			if !strings.HasPrefix(o.at, "nat.masquerade") && d.prefix.Overlaps(o.prefix) {
				p.bad("%s: %s overlaps %s (%s): the cluster's own range is never routed into a tunnel", d.at, d.prefix, o.prefix, o.at)
			}
		}
	}
	for i, n := range nets {
		for _, other := range append(append(append([]claim{}, dsts...), nets[i+1:]...), own...) {
			if n.prefix.Overlaps(other.prefix) {
				p.bad("%s: network %s overlaps %s (%s): the device's connected route would capture it", n.at, n.prefix, other.prefix, other.at)
			}
		}
	}
	p.duplicateRoutes(spec)
}

// claim refuses a default, special or underlay-capturing range.
func (p *problems) claim(c claim, underlay []claim) {
	if c.prefix.Bits() == 0 {
		p.bad("%s: %s is a default route: the agent never routes every destination", c.at, c.prefix)
		return
	}
	for _, s := range specialRanges {
		if c.prefix.Overlaps(s) {
			p.bad("%s: %s overlaps the special range %s (the node's own)", c.at, c.prefix, s)
		}
	}
	for _, u := range underlay {
		if c.prefix.Contains(u.prefix.Addr()) {
			p.bad("%s: %s contains the underlay address %s (%s): the tunnel would be routed into itself", c.at, c.prefix, u.prefix.Addr(), u.at)
		}
	}
}

// duplicateRoutes refuses two routes to one destination that differ.
func (p *problems) duplicateRoutes(spec *v1alpha1.NodeConfigSpec) {
	first := map[string]int{}
	for i, r := range spec.Routes {
		j, seen := first[r.Dst]
		if !seen {
			first[r.Dst] = i
			continue
		}
		if o := spec.Routes[j]; o.Via != r.Via || o.Device != r.Device {
			p.bad("routes[%d].dst: %s is routed by routes[%d] already, through another next hop", i, r.Dst, j)
		}
	}
}

func underlayAddrs(spec *v1alpha1.NodeConfigSpec) []claim {
	var out []claim
	add := func(at, s string) {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, claim{at, netip.PrefixFrom(a, a.BitLen())})
		}
	}
	for i, d := range spec.Devices {
		add(fmt.Sprintf("devices[%d].underlayIP", i), d.UnderlayIP)
	}
	for i, f := range spec.FDB {
		add(fmt.Sprintf("fdb[%d].dst", i), f.Dst)
	}
	return out
}

func routeClaims(spec *v1alpha1.NodeConfigSpec) []claim {
	var out []claim
	for i, r := range spec.Routes {
		if pr, err := netip.ParsePrefix(r.Dst); err == nil {
			out = append(out, claim{fmt.Sprintf("routes[%d].dst", i), pr.Masked()})
		}
	}
	return out
}

func deviceClaims(spec *v1alpha1.NodeConfigSpec) []claim {
	var out []claim
	for i, d := range spec.Devices {
		for j, a := range d.Addresses {
			if pr, err := netip.ParsePrefix(a); err == nil {
				out = append(out, claim{fmt.Sprintf("devices[%d].addresses[%d]", i, j), pr.Masked()})
			}
		}
	}
	return out
}

// ownRanges are the ranges of the node's own cluster the config names.
func ownRanges(spec *v1alpha1.NodeConfigSpec) []claim {
	var out []claim
	add := func(at, s string) {
		if pr, err := netip.ParsePrefix(s); err == nil {
			out = append(out, claim{at, pr.Masked()})
		}
	}
	for i, c := range spec.LocalCIDRs {
		add(fmt.Sprintf("localCIDRs[%d]", i), c)
	}
	for i, m := range spec.NAT.Mappings {
		add(fmt.Sprintf("nat.mappings[%d].realCIDR", i), m.RealCIDR)
	}
	for i, m := range spec.NAT.Masquerade {
		for j, s := range m.ExceptSources {
			add(fmt.Sprintf("nat.masquerade[%d].exceptSources[%d]", i, j), s)
		}
	}
	return out
}

// checkHost refuses a desired state whose routes or device networks overlap
// an address of the host's own interfaces (host: not the agent's devices).
// It is pure; Set calls it with what Read saw, before any write.
func checkHost(desired State, host []netip.Prefix) error {
	var bad []string
	check := func(what, s string) {
		pr, err := netip.ParsePrefix(s)
		if err != nil {
			return
		}
		pr = pr.Masked()
		for _, h := range host {
			if pr.Overlaps(h.Masked()) {
				bad = append(bad, fmt.Sprintf("%s %s overlaps the host's address %s", what, pr, h))
			}
		}
	}
	for _, r := range desired.Routes {
		check("route to", r.Dst)
	}
	for _, a := range desired.Addrs {
		check("network of "+a.Dev, a.CIDR)
	}
	if len(bad) > 0 {
		return fmt.Errorf("NodeConfig refused: %s: the agent does not route or address the host's own networks", strings.Join(bad, "; "))
	}
	return nil
}
