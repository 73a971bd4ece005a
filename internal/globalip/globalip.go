// Package globalip translates addresses between a cluster's real ranges and
// the globally unique GlobalCIDRs they are mapped onto (1:1 NETMAP at the
// cluster edge). It is pure: no I/O, no state beyond the parsed map.
//
// # Usage
//
//	m, err := globalip.Parse(cluster.Spec.GlobalCIDRs) // real CIDR → global CIDR
//	podIP := m.ToGlobal(netip.MustParseAddr("10.244.1.7")) // 100.64.1.7
package globalip

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Map is a parsed set of real → global range pairs of equal size.
type Map struct {
	pairs []pair
}

type pair struct{ real, global netip.Prefix }

// Parse reads a real → global CIDR map as the topology and the Cluster
// object carry it. Both sides of a pair must be of one family and size.
func Parse(m map[string]string) (Map, error) {
	var out Map
	var errs []string
	for r, g := range m {
		rp, err1 := netip.ParsePrefix(r)
		gp, err2 := netip.ParsePrefix(g)
		switch {
		case err1 != nil || err2 != nil:
			errs = append(errs, fmt.Sprintf("%s → %s: not a pair of CIDRs", r, g))
		case rp.Addr().Is4() != gp.Addr().Is4() || rp.Bits() != gp.Bits():
			errs = append(errs, fmt.Sprintf("%s → %s: ranges differ in family or size", r, g))
		default:
			out.pairs = append(out.pairs, pair{rp.Masked(), gp.Masked()})
		}
	}
	// Longest real prefix first, so the most specific mapping wins.
	slices.SortFunc(out.pairs, func(a, b pair) int {
		if a.real.Bits() != b.real.Bits() {
			return b.real.Bits() - a.real.Bits()
		}
		return a.real.Addr().Compare(b.real.Addr())
	})
	if len(errs) > 0 {
		slices.Sort(errs)
		return out, fmt.Errorf("global CIDRs: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

// ToGlobal returns a's address inside the global range its real range maps
// to, or a unchanged when no range holds it.
func (m Map) ToGlobal(a netip.Addr) netip.Addr {
	a = a.Unmap()
	for _, p := range m.pairs {
		if p.real.Contains(a) {
			return Splice(p.global.Addr(), a, p.real.Bits())
		}
	}
	return a
}

// ToGlobalString is ToGlobal over text; text that is not an address comes
// back unchanged.
func (m Map) ToGlobalString(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	return m.ToGlobal(a).String()
}

// Splice returns the first n bits of hi followed by the remaining bits of
// lo; both of one family. 192.168.1.10 spliced under 220.0.0.0 at n=8 is
// 220.168.1.10.
func Splice(hi, lo netip.Addr, n int) netip.Addr {
	a, b := hi.As16(), lo.As16()
	if hi.Is4() {
		n += 96 // As16 puts an IPv4 address in the last 4 bytes
	}
	var out [16]byte
	for i := range out {
		bits := n - 8*i
		switch {
		case bits >= 8:
			out[i] = a[i]
		case bits <= 0:
			out[i] = b[i]
		default:
			mask := byte(0xff << (8 - bits))
			out[i] = a[i]&mask | b[i]&^mask
		}
	}
	addr := netip.AddrFrom16(out)
	if hi.Is4() {
		return addr.Unmap()
	}
	return addr
}
