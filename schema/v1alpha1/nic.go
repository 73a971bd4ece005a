package v1alpha1

import (
	"fmt"
	"net/netip"
	"strings"
)

// NIC selector prefixes (network.nic), after the CNIs' autodetection
// methods: the interface holding an address in a CIDR, or the one the
// route to an address leaves through.
const (
	NICPrefixCIDR     = "cidr:"
	NICPrefixCanReach = "can-reach:"
)

// +kubebuilder:object:generate=false

// NICSelector is a parsed network.nic: exactly one of Auto, Name, CIDR and
// CanReach is set.
type NICSelector struct {
	// Auto: the interface holding the node's underlay address.
	Auto bool
	// Name: the interface of that name.
	Name string
	// CIDR: the interface holding an address inside it.
	CIDR netip.Prefix
	// CanReach: the interface the route to this address leaves through.
	CanReach netip.Addr
}

// ParseNIC reads auto (or empty), an interface name, cidr:<CIDR> or
// can-reach:<IP>. It is pure.
func ParseNIC(s string) (NICSelector, error) {
	switch {
	case s == "" || s == NICAuto:
		return NICSelector{Auto: true}, nil
	case strings.HasPrefix(s, NICPrefixCIDR):
		pr, err := netip.ParsePrefix(strings.TrimPrefix(s, NICPrefixCIDR))
		if err != nil {
			return NICSelector{}, fmt.Errorf("%q: the part after %s is not a CIDR", s, NICPrefixCIDR)
		}
		return NICSelector{CIDR: pr.Masked()}, nil
	case strings.HasPrefix(s, NICPrefixCanReach):
		a, err := netip.ParseAddr(strings.TrimPrefix(s, NICPrefixCanReach))
		if err != nil {
			return NICSelector{}, fmt.Errorf("%q: the part after %s is not an IP address", s, NICPrefixCanReach)
		}
		return NICSelector{CanReach: a}, nil
	case len(s) <= 15 && s != "." && s != ".." && !strings.ContainsAny(s, "/: \t\n"):
		return NICSelector{Name: s}, nil
	}
	return NICSelector{}, fmt.Errorf("%q is not auto, an interface name (1 to 15 characters, no '/', ':' or white space), cidr:<CIDR> nor can-reach:<IP>", s)
}
