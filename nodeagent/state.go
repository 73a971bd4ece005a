package nodeagent

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Chains the agent owns; everything it does to packets happens in them.
const (
	ChainPrerouting  = "KOSMOS-PREROUTING"
	ChainPostrouting = "KOSMOS-POSTROUTING"
	ChainForward     = "KOSMOS-FORWARD"
	// ChainForwardSrc and ChainForwardDst are reached from ChainForward
	// only: a source, then a destination, among the known ranges.
	ChainForwardSrc = "KOSMOS-FORWARD-SRC"
	ChainForwardDst = "KOSMOS-FORWARD-DST"
	// ChainInput guards the devices' UDP ports (filter INPUT).
	ChainInput = "KOSMOS-INPUT"
	// ChainNoTrackIn and ChainNoTrackOut keep the tunnels' own UDP out of
	// conntrack (raw PREROUTING and OUTPUT; see noTrackRules).
	ChainNoTrackIn  = "KOSMOS-NOTRACK-IN"
	ChainNoTrackOut = "KOSMOS-NOTRACK-OUT"
)

// RouteProtocol tags the routes the agent owns; it never touches others.
const RouteProtocol = 75

// Link is a VXLAN device as the kernel holds it.
type Link struct {
	Name  string
	VNI   int
	Port  int
	MAC   string
	MTU   int // 0: derived from the parent at creation
	Local string
	// Parent is the interface the tunnel is bound to ("" or "auto": the
	// one holding Local).
	Parent string
	// Overhead is what the packets carry beyond VXLAN (WireGuard's, on a
	// cross-cluster device of an encrypting node): an MTU derived from the
	// parent leaves room for it. Not read back; never compared.
	Overhead int
}

// Addr is an address on one of the agent's devices.
type Addr struct{ Dev, CIDR string }

// Route is a route the agent owns.
type Route struct{ Dst, Via, Dev string }

// FDB is a static forwarding entry on a VXLAN device.
type FDB struct{ Dev, MAC, Dst string }

// Neigh is a permanent neighbour entry.
type Neigh struct{ Dev, IP, MAC string }

// Chain is the ordered rule list of one of the agent's chains, as rule
// specifications the agent rendered itself.
type Chain struct {
	// Family is ipv4 or ipv6; Table nat or filter.
	Family, Table, Name string
	Rules               []string
	// insertAt, on a chain as read, is where its jump must be inserted
	// when it is missing or misplaced (jumpWindow; 0: appended).
	insertAt int
}

// Key identifies the chain.
func (c Chain) Key() string { return c.Family + "/" + c.Table + "/" + c.Name }

// State is everything the agent owns in a node's kernel, as plain data.
// Every list is sorted, so two states compare with ==-like equality.
type State struct {
	Links  []Link
	Addrs  []Addr
	Routes []Route
	FDB    []FDB
	Neighs []Neigh
	Chains []Chain
	// Sets are the agent's ipsets, which its rules match (ipset.go).
	Sets []IPSet
	// Sysctls are the settings the devices rely on (sysctlsFor), with the
	// values the kernel holds.
	Sysctls []Sysctl
	// Offloads are the offload features of the devices (offloadsFor),
	// with the values the kernel holds (offload.go).
	Offloads []Offload
	// Others is what Read saw of other owners; it is never written, never
	// printed and never compared.
	Others Others
}

// Others is what the kernel holds that is not the agent's and that the
// agent must not take: routes of other owners and the host's addresses.
type Others struct {
	// Routes maps each destination of the main table held by another owner
	// (another protocol, or a device that is not the agent's) to a
	// description of that owner ("proto static dev eth0").
	Routes map[string]string
	// Addrs are the addresses of the interfaces that are not the agent's,
	// loopback included, link-local excluded.
	Addrs []netip.Prefix
}

// String prints the state one object a line, sorted: the golden form.
func (s State) String() string {
	var b strings.Builder
	for _, l := range s.Links {
		fmt.Fprintf(&b, "link %s vni %d port %d mac %s mtu %d local %s parent %s\n", l.Name, l.VNI, l.Port, l.MAC, l.MTU, l.Local, l.Parent)
	}
	for _, a := range s.Addrs {
		fmt.Fprintf(&b, "addr %s dev %s\n", a.CIDR, a.Dev)
	}
	for _, r := range s.Routes {
		fmt.Fprintf(&b, "route %s via %s dev %s\n", r.Dst, r.Via, r.Dev)
	}
	for _, f := range s.FDB {
		fmt.Fprintf(&b, "fdb %s dst %s dev %s\n", f.MAC, f.Dst, f.Dev)
	}
	for _, n := range s.Neighs {
		fmt.Fprintf(&b, "neigh %s lladdr %s dev %s\n", n.IP, n.MAC, n.Dev)
	}
	for _, x := range s.Sysctls {
		fmt.Fprintf(&b, "sysctl %s\n", x)
	}
	writeOffloads(&b, s.Offloads)
	writeSets(&b, s.Sets)
	for _, c := range s.Chains {
		fmt.Fprintf(&b, "chain %s\n", c.Key())
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "  %s\n", r)
		}
	}
	return b.String()
}

// Normalize sorts every list of the state.
func (s *State) Normalize() {
	slices.SortFunc(s.Links, func(a, b Link) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(s.Addrs, func(a, b Addr) int { return cmp.Or(cmp.Compare(a.Dev, b.Dev), cmp.Compare(a.CIDR, b.CIDR)) })
	slices.SortFunc(s.Routes, func(a, b Route) int { return cmp.Or(cmp.Compare(a.Dst, b.Dst), cmp.Compare(a.Dev, b.Dev)) })
	slices.SortFunc(s.FDB, func(a, b FDB) int {
		return cmp.Or(cmp.Compare(a.Dev, b.Dev), cmp.Compare(a.MAC, b.MAC), cmp.Compare(a.Dst, b.Dst))
	})
	slices.SortFunc(s.Neighs, func(a, b Neigh) int { return cmp.Or(cmp.Compare(a.Dev, b.Dev), cmp.Compare(a.IP, b.IP)) })
	slices.SortFunc(s.Chains, func(a, b Chain) int { return cmp.Compare(a.Key(), b.Key()) })
	sortSets(s.Sets)
	slices.SortFunc(s.Sysctls, func(a, b Sysctl) int { return cmp.Compare(a.Key, b.Key) })
	sortOffloads(s.Offloads)
}

// Validate checks a NodeConfig before anything is applied: a config with any
// problem is refused whole and the kernel keeps its last good state. Beyond
// syntax and references, it refuses routes and device addresses that would
// claim what is not Kosmos's (defaults, special ranges, the underlay, the
// node's own ranges; see ranges.go).
func Validate(spec *v1alpha1.NodeConfigSpec) error {
	var p problems
	devices := p.devices(spec.Devices)
	p.entries(spec, devices)
	p.nat(&spec.NAT, devices)
	p.ranges(spec)
	if _, err := wireGuardConfig(spec); err != nil {
		p = append(p, strings.TrimPrefix(err.Error(), "NodeConfig refused: "))
	}
	if len(p) > 0 {
		return fmt.Errorf("NodeConfig refused: %s", strings.Join(p, "; "))
	}
	return nil
}

// problems collects what Validate finds, each naming the field at fault.
type problems []string

func (p *problems) bad(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// device checks that a reference at path names one of the config's devices.
func (p *problems) device(path, name string, devices map[string]bool) {
	if !devices[name] {
		p.bad("%s.device: %q is not one of the config's devices", path, name)
	}
}

// deviceName is a name the agent may give a device: its prefix, then at
// most 12 lower-case letters, digits or dashes (15 characters in all, the
// kernel's limit), nothing that iptables-restore would have to quote.
var deviceName = regexp.MustCompile(`^` + v1alpha1.DevicePrefix + `[a-z0-9-]{1,12}$`)

// devices checks the devices and returns the set of their names.
func (p *problems) devices(devs []v1alpha1.Device) map[string]bool {
	names := map[string]bool{}
	for i, d := range devs {
		at := fmt.Sprintf("devices[%d]", i)
		if !deviceName.MatchString(d.Name) {
			p.bad("%s.name: %q is not a device the agent may own (vx- prefix, at most 15 characters)", at, d.Name)
		}
		if names[d.Name] {
			p.bad("%s.name: %q is declared twice", at, d.Name)
		}
		names[d.Name] = true
		if d.VNI < 1 || d.VNI > 1<<24-1 {
			p.bad("%s.vni: %d is out of range 1 to 16777215", at, d.VNI)
		}
		if d.Port < 1 || d.Port > 65535 {
			p.bad("%s.port: %d is out of range 1 to 65535", at, d.Port)
		}
		if d.MTU != 0 && (d.MTU < 576 || d.MTU > 9000) {
			p.bad("%s.mtu: %d is out of range 576 to 9000 (or 0)", at, d.MTU)
		}
		if !isUnicastMAC(d.MAC) {
			p.bad("%s.mac: %q is not a unicast MAC", at, d.MAC)
		}
		if _, err := netip.ParseAddr(d.UnderlayIP); err != nil {
			p.bad("%s.underlayIP: %q is not an IP address", at, d.UnderlayIP)
		}
		if _, err := v1alpha1.ParseNIC(d.NIC); err != nil {
			p.bad("%s.nic: %v", at, err)
		}
		for j, a := range d.Addresses {
			if _, err := netip.ParsePrefix(a); err != nil {
				p.bad("%s.addresses[%d]: %q is not an address in CIDR notation", at, j, a)
			}
		}
	}
	return names
}

// entries checks the routes, FDB and neighbour entries.
func (p *problems) entries(spec *v1alpha1.NodeConfigSpec, devices map[string]bool) {
	for i, r := range spec.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		p.device(at, r.Device, devices)
		if pr, err := netip.ParsePrefix(r.Dst); err != nil || pr.Masked() != pr {
			p.bad("%s.dst: %q is not a CIDR", at, r.Dst)
		}
		if _, err := netip.ParseAddr(r.Via); err != nil {
			p.bad("%s.via: %q is not an IP address", at, r.Via)
		}
	}
	for i, c := range spec.LocalCIDRs {
		if pr, err := netip.ParsePrefix(c); err != nil || pr.Masked() != pr {
			p.bad("localCIDRs[%d]: %q is not a CIDR", i, c)
		}
	}
	for i, f := range spec.FDB {
		at := fmt.Sprintf("fdb[%d]", i)
		p.device(at, f.Device, devices)
		if !isUnicastMAC(f.MAC) {
			p.bad("%s.mac: %q is not a unicast MAC", at, f.MAC)
		}
		if _, err := netip.ParseAddr(f.Dst); err != nil {
			p.bad("%s.dst: %q is not an IP address", at, f.Dst)
		}
	}
	for i, n := range spec.Neighbors {
		at := fmt.Sprintf("neighbors[%d]", i)
		p.device(at, n.Device, devices)
		if !isUnicastMAC(n.MAC) {
			p.bad("%s.mac: %q is not a unicast MAC", at, n.MAC)
		}
		if _, err := netip.ParseAddr(n.IP); err != nil {
			p.bad("%s.ip: %q is not an IP address", at, n.IP)
		}
	}
}

// nat checks the 1:1 mappings, the edge devices and the masquerade rules.
func (p *problems) nat(nat *v1alpha1.NATSpec, devices map[string]bool) {
	for i, m := range nat.Mappings {
		r, err1 := netip.ParsePrefix(m.RealCIDR)
		g, err2 := netip.ParsePrefix(m.GlobalCIDR)
		if err1 != nil || err2 != nil || r.Bits() != g.Bits() || r.Addr().Is4() != g.Addr().Is4() {
			p.bad("nat.mappings[%d]: %q → %q is not a mapping of two CIDRs of one family and size", i, m.RealCIDR, m.GlobalCIDR)
			continue
		}
		p.canonical(fmt.Sprintf("nat.mappings[%d].realCIDR", i), m.RealCIDR, r)
		p.canonical(fmt.Sprintf("nat.mappings[%d].globalCIDR", i), m.GlobalCIDR, g)
	}
	for i, d := range nat.EdgeDevices {
		p.device(fmt.Sprintf("nat.edgeDevices[%d]", i), d, devices)
	}
	for i, m := range nat.MasqueradeSources {
		at := fmt.Sprintf("nat.masqueradeSources[%d]", i)
		p.device(at, m.Device, devices)
		for j, src := range m.Sources {
			pr, err := netip.ParsePrefix(src)
			if err != nil {
				p.bad("%s.sources[%d]: %q is not a CIDR", at, j, src)
				continue
			}
			p.canonical(fmt.Sprintf("%s.sources[%d]", at, j), src, pr)
		}
	}
	for i, m := range nat.Masquerade {
		at := fmt.Sprintf("nat.masquerade[%d]", i)
		p.device(at, m.Device, devices)
		for j, s := range m.ExceptSources {
			pr, err := netip.ParsePrefix(s)
			if err != nil {
				p.bad("%s.exceptSources[%d]: %q is not a CIDR", at, j, s)
				continue
			}
			p.canonical(fmt.Sprintf("%s.exceptSources[%d]", at, j), s, pr)
		}
	}
}

// canonical refuses a CIDR not written as iptables-save prints it (host
// bits set, upper-case or long IPv6): the rule rendered from it would
// never read back equal, and the agent would rewrite it on every pass.
func (p *problems) canonical(at, s string, pr netip.Prefix) {
	if pr.Masked().String() != s {
		p.bad("%s: %q is not canonical (write %s)", at, s, pr.Masked())
	}
}

func isUnicastMAC(s string) bool {
	hw, err := net.ParseMAC(s)
	return err == nil && len(hw) == 6 && hw[0]&1 == 0
}

// Desired renders the kernel state a valid NodeConfig asks for, including
// the rules of the agent's own chains. It is pure.
func Desired(spec *v1alpha1.NodeConfigSpec) State {
	var s State
	v6dev := map[string]bool{}
	for _, d := range spec.Devices {
		mac, _ := net.ParseMAC(d.MAC)
		s.Links = append(s.Links, Link{Name: d.Name, VNI: int(d.VNI), Port: int(d.Port), MAC: mac.String(), MTU: int(d.MTU), Local: d.UnderlayIP, Parent: d.NIC})
		wireGuardMTU(spec, &s.Links[len(s.Links)-1])
		for _, a := range d.Addresses {
			pr := netip.MustParsePrefix(a)
			s.Addrs = append(s.Addrs, Addr{Dev: d.Name, CIDR: pr.String()})
		}
		if ip, err := netip.ParseAddr(d.UnderlayIP); err == nil && !ip.Is4() {
			v6dev[d.Name] = true
		}
	}
	for _, r := range spec.Routes {
		// Canonical text, as the kernel prints it: routes are compared, and
		// checked against other owners', by destination text.
		s.Routes = append(s.Routes, Route{Dst: netip.MustParsePrefix(r.Dst).String(), Via: netip.MustParseAddr(r.Via).String(), Dev: r.Device})
	}
	for _, f := range spec.FDB {
		mac, _ := net.ParseMAC(f.MAC)
		s.FDB = append(s.FDB, FDB{Dev: f.Device, MAC: mac.String(), Dst: f.Dst})
	}
	for _, n := range spec.Neighbors {
		mac, _ := net.ParseMAC(n.MAC)
		s.Neighs = append(s.Neighs, Neigh{Dev: n.Device, IP: n.IP, MAC: mac.String()})
	}
	s.Chains, s.Sets = renderChains(spec, v6dev)
	s.Sysctls = sysctlsFor(s.Links)
	s.Offloads = offloadsFor(s.Links)
	s.Routes = dedup(s.Routes)
	s.Normalize()
	return s
}

// familyRule is a rule of one family's chain (chain: where it is not
// implied).
type familyRule struct{ fam, chain, rule string }

// forwardRules are the filter rules of forwarding (see renderChains): each
// device's traffic, in or out, to KOSMOS-FORWARD-SRC; there a source among
// the known ranges (the family's KOSMOS-RANGE set) goes on to
// KOSMOS-FORWARD-DST, which accepts a destination among them. One rule
// each, whatever the number of ranges (ipset.go).
func forwardRules(spec *v1alpha1.NodeConfigSpec, devFam func(string) string, ranges []IPSet) []familyRule {
	var out []familyRule
	for _, d := range spec.Devices {
		out = append(out,
			familyRule{devFam(d.Name), ChainForward, fmt.Sprintf("-i %s -g %s", d.Name, ChainForwardSrc)},
			familyRule{devFam(d.Name), ChainForward, fmt.Sprintf("-o %s -g %s", d.Name, ChainForwardSrc)})
	}
	for _, set := range ranges {
		out = append(out,
			familyRule{set.Family, ChainForwardSrc, fmt.Sprintf("-m set --match-set %s src -g %s", set.Name, ChainForwardDst)},
			familyRule{set.Family, ChainForwardDst, fmt.Sprintf("-m set --match-set %s dst -j ACCEPT", set.Name)})
	}
	return out
}

// addrFamily is the family ("ipv4" or "ipv6") of an address.
func addrFamily(a netip.Addr) string {
	if a.Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// rangeSets are the known ranges (knownRanges) as one hash:net set per
// family that has any.
func rangeSets(spec *v1alpha1.NodeConfigSpec) []IPSet {
	byFam := map[string][]netip.Prefix{}
	for _, k := range knownRanges(spec) {
		fam := addrFamily(k.Addr())
		byFam[fam] = append(byFam[fam], k)
	}
	var out []IPSet
	for _, fam := range []string{"ipv4", "ipv6"} {
		if len(byFam[fam]) > 0 {
			out = append(out, IPSet{Name: rangeSetName(fam), Family: fam, Type: setHashNet, Members: setMembers(byFam[fam])})
		}
	}
	return out
}

// inputRules guard the devices' VXLAN ports: for each port, a packet from
// one of the peers the config tunnels to (fdb[].dst of the devices on that
// port, the port's KOSMOS-PEER set) returns to INPUT, whose own rules and
// policy decide; so does one from an encrypted peer (KOSMOS-WGPEER) that
// came through the WireGuard device or its rotation device; any other
// packet to the port is dropped. KOSMOS-INPUT is jumped to first, so that
// no earlier accept lets an unknown source inject frames into a tunnel. The
// ports are Kosmos's own (a port shared with another VXLAN user, flannel's
// 4789 say, would have that user's peers dropped). A port's rules are as
// many whatever the number of peers: each is one set lookup (ipset.go).
func inputRules(spec *v1alpha1.NodeConfigSpec, peers []peersOfPort) []familyRule {
	var out []familyRule
	for _, p := range peers {
		if len(p.clear) > 0 {
			out = append(out, familyRule{fam: p.fam, rule: fmt.Sprintf("-p udp -m udp --dport %d -m set --match-set %s src -j RETURN", p.port, peerSetName(p.fam, p.port, false))})
		}
		if len(p.tunnelled) > 0 {
			for _, dev := range []string{spec.WireGuard.Device, rotationDevice(spec.WireGuard.Device)} {
				out = append(out, familyRule{fam: p.fam, rule: fmt.Sprintf("-i %s -p udp -m udp --dport %d -m set --match-set %s src -j RETURN", dev, p.port, peerSetName(p.fam, p.port, true))})
			}
		}
		out = append(out, familyRule{fam: p.fam, rule: fmt.Sprintf("-p udp -m udp --dport %d -j DROP", p.port)})
	}
	return out
}

// noTrackRules keep the VXLAN datagrams of the agent's devices out of
// conntrack: those to a device's underlay address and port as they arrive
// (raw PREROUTING), those from it to the port as they leave (raw OUTPUT).
// A VXLAN flow picks its source port from the inner flow's hash and sends
// to the fixed port both ways, so conntrack never sees a reply: every
// inner flow left an UNREPLIED entry per direction on both nodes, taking
// conntrack table room from the node's real connections, and a lookup per
// datagram. Calico and OpenShift SDN do the same. Such datagrams are
// UNTRACKED to the later rules: a host firewall that accepts the port only
// with --ctstate NEW must accept UNTRACKED too (documented).
func noTrackRules(spec *v1alpha1.NodeConfigSpec, devFam func(string) string) []familyRule {
	var out []familyRule
	for _, d := range spec.Devices {
		a, err := netip.ParseAddr(d.UnderlayIP)
		if err != nil {
			continue
		}
		local := netip.PrefixFrom(a, a.BitLen()).String()
		out = append(out,
			familyRule{devFam(d.Name), ChainNoTrackIn, fmt.Sprintf("-d %s -p udp -m udp --dport %d -j NOTRACK", local, d.Port)},
			familyRule{devFam(d.Name), ChainNoTrackOut, fmt.Sprintf("-s %s -p udp -m udp --dport %d -j NOTRACK", local, d.Port)})
	}
	slices.SortFunc(out, func(a, b familyRule) int {
		return cmp.Or(cmp.Compare(a.fam, b.fam), cmp.Compare(a.chain, b.chain), cmp.Compare(a.rule, b.rule))
	})
	return slices.Compact(out)
}

// peersOfPort are the peers one VXLAN port of one family accepts: in the
// clear, or only through the WireGuard device.
type peersOfPort struct {
	fam              string
	port             int32
	clear, tunnelled []string // addresses, sorted, without duplicates
}

// portPeers are the peers of each of the devices' ports (fdb[].dst of the
// devices on it), sorted by family and port.
func portPeers(spec *v1alpha1.NodeConfigSpec, devFam func(string) string) []peersOfPort {
	type portKey struct {
		fam  string
		port int32
	}
	byPort := map[portKey]*peersOfPort{}
	portOf := map[string]portKey{}
	for _, d := range spec.Devices {
		k := portKey{devFam(d.Name), d.Port}
		portOf[d.Name] = k
		if byPort[k] == nil {
			byPort[k] = &peersOfPort{fam: k.fam, port: k.port}
		}
	}
	tunnelled := wireGuardSources(spec)
	for _, f := range spec.FDB {
		k, ok := portOf[f.Device]
		if !ok {
			continue
		}
		a, err := netip.ParseAddr(f.Dst)
		if err != nil {
			continue
		}
		p := byPort[k]
		if tunnelled[netip.PrefixFrom(a, a.BitLen()).String()] { // an encrypted peer: through the WireGuard device only
			p.tunnelled = append(p.tunnelled, a.String())
		} else {
			p.clear = append(p.clear, a.String())
		}
	}
	out := make([]peersOfPort, 0, len(byPort))
	for _, p := range byPort {
		slices.Sort(p.clear)
		slices.Sort(p.tunnelled)
		p.clear, p.tunnelled = slices.Compact(p.clear), slices.Compact(p.tunnelled)
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b peersOfPort) int { return cmp.Or(cmp.Compare(a.fam, b.fam), cmp.Compare(a.port, b.port)) })
	return out
}

// peerSets are the sets of the ports' peers (clear and encrypted, where
// there are any), as inputRules matches them.
func peerSets(peers []peersOfPort) []IPSet {
	var out []IPSet
	for _, p := range peers {
		if len(p.clear) > 0 {
			out = append(out, IPSet{Name: peerSetName(p.fam, p.port, false), Family: p.fam, Type: setHashIP, Members: p.clear})
		}
		if len(p.tunnelled) > 0 {
			out = append(out, IPSet{Name: peerSetName(p.fam, p.port, true), Family: p.fam, Type: setHashIP, Members: p.tunnelled})
		}
	}
	return out
}

// knownRanges are the ranges Kosmos forwards between: the node's own
// cluster's ranges (localCIDRs, nat real CIDRs, masquerade exceptions), the
// routed destinations and the devices' networks (the tunnel addresses a
// masqueraded packet carries). Sorted, without duplicates.
func knownRanges(spec *v1alpha1.NodeConfigSpec) []netip.Prefix {
	var out []netip.Prefix
	add := func(s string) {
		if pr, err := netip.ParsePrefix(s); err == nil {
			out = append(out, pr.Masked())
		}
	}
	for _, c := range spec.LocalCIDRs {
		add(c)
	}
	for _, m := range spec.NAT.Mappings {
		add(m.RealCIDR)
	}
	for _, m := range spec.NAT.Masquerade {
		for _, c := range m.ExceptSources {
			add(c)
		}
	}
	for _, m := range spec.NAT.MasqueradeSources {
		for _, c := range m.Sources {
			add(c)
		}
	}
	for _, r := range spec.Routes {
		add(r.Dst)
	}
	for _, d := range spec.Devices {
		for _, a := range d.Addresses {
			add(a)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	return slices.Compact(out)
}

func dedup[T comparable](xs []T) []T {
	seen := map[T]bool{}
	out := xs[:0:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// renderChains writes the agent's chains for both families, and the sets
// their rules match (the ports' peers and the known ranges, ipset.go). The rules are
// rendered here from structured fields, never taken from the config as text,
// in the canonical form `iptables -S` prints (-s, -d, -i, -o, -j), so that
// reading a chain back compares equal.
// Order matters in POSTROUTING: 1:1 mappings first, then no masquerade
// towards other clusters (KOSMOS-NOMASQ, see nomasq.go), then the sources
// that are left alone, then masquerade.
//
// Forwarding (filter): FORWARD jumps to KOSMOS-FORWARD last, behind every
// rule already there (CNI NetworkPolicy chains, KUBE-FORWARD, the host's
// firewall), so Kosmos never overrides their verdicts; it accepts only what
// they left undecided. KOSMOS-FORWARD sends a packet that enters or leaves
// one of the agent's devices to KOSMOS-FORWARD-SRC, which goes on to
// KOSMOS-FORWARD-DST only for a source among the known ranges
// (knownRanges), which accepts it only for a destination among them. Both
// are gotos: a packet that does not match returns to FORWARD, whose later
// rules and policy decide.
func renderChains(spec *v1alpha1.NodeConfigSpec, v6dev map[string]bool) ([]Chain, []IPSet) {
	chains := map[string]*Chain{}
	for _, fam := range []string{"ipv4", "ipv6"} {
		for _, c := range []Chain{
			{Family: fam, Table: "nat", Name: ChainPrerouting}, {Family: fam, Table: "nat", Name: ChainPostrouting},
			{Family: fam, Table: "filter", Name: ChainForward}, {Family: fam, Table: "filter", Name: ChainForwardSrc}, {Family: fam, Table: "filter", Name: ChainForwardDst},
			{Family: fam, Table: "filter", Name: ChainInput}, {Family: fam, Table: "nat", Name: ChainNoMasq},
			{Family: fam, Table: "raw", Name: ChainNoTrackIn}, {Family: fam, Table: "raw", Name: ChainNoTrackOut},
		} {
			c := c
			chains[c.Key()] = &c
		}
	}
	famOf := func(cidr string) string { return addrFamily(netip.MustParsePrefix(cidr).Addr()) }
	add := func(fam, table, chain, rule string) {
		c := chains[fam+"/"+table+"/"+chain]
		c.Rules = append(c.Rules, rule)
	}
	for _, dev := range spec.NAT.EdgeDevices {
		for _, m := range spec.NAT.Mappings {
			fam := famOf(m.RealCIDR)
			add(fam, "nat", ChainPrerouting, fmt.Sprintf("-d %s -i %s -j NETMAP --to %s", m.GlobalCIDR, dev, m.RealCIDR))
			add(fam, "nat", ChainPostrouting, fmt.Sprintf("-s %s -o %s -j NETMAP --to %s", m.RealCIDR, dev, m.GlobalCIDR))
		}
	}
	devFam := func(dev string) string {
		if v6dev[dev] {
			return "ipv6"
		}
		return "ipv4"
	}
	for _, r := range noMasqRules(spec) {
		if c := chains[r.fam+"/nat/"+ChainNoMasq]; len(c.Rules) == 0 {
			add(r.fam, "nat", ChainPostrouting, "-j "+ChainNoMasq)
		}
		add(r.fam, "nat", r.chain, r.rule)
	}
	for _, m := range spec.NAT.Masquerade {
		fam := devFam(m.Device)
		for _, src := range m.ExceptSources {
			if famOf(src) == fam {
				add(fam, "nat", ChainPostrouting, fmt.Sprintf("-s %s -o %s -j RETURN", src, m.Device))
			}
		}
		add(fam, "nat", ChainPostrouting, fmt.Sprintf("-o %s -j MASQUERADE", m.Device))
	}
	for _, m := range spec.NAT.MasqueradeSources {
		fam := devFam(m.Device)
		for _, src := range m.Sources {
			if famOf(src) == fam {
				add(fam, "nat", ChainPostrouting, fmt.Sprintf("-s %s ! -o %s -j MASQUERADE", src, m.Device))
			}
		}
	}
	peers, ranges := portPeers(spec, devFam), rangeSets(spec)
	for _, r := range forwardRules(spec, devFam, ranges) {
		add(r.fam, "filter", r.chain, r.rule)
	}
	for _, r := range inputRules(spec, peers) {
		add(r.fam, "filter", ChainInput, r.rule)
	}
	for _, r := range noTrackRules(spec, devFam) {
		add(r.fam, "raw", r.chain, r.rule)
	}
	out := make([]Chain, 0, len(chains))
	for _, c := range chains {
		out = append(out, *c)
	}
	return out, append(peerSets(peers), ranges...)
}
