package nodeagent

// A gateway candidate's own pods are translated on the candidate itself
// (gateway HA, issue 15; see reconciler/netplan/ownnat.go): the plan routes
// the global image of each sibling candidate's pod range to that sibling
// over the path device. What arrives through another edge device for such
// an image is therefore not translated here but handed to the sibling as
// it is, where it is translated (a new connection) or meets the conntrack
// entry that translated it (a reply): the NAT binding of a connection to
// or from a pod on a candidate stays on that candidate, whichever
// candidate the remote side sends through.

import (
	"fmt"
	"net/netip"
	"slices"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// imageReturns are the nat PREROUTING rules that leave untranslated what
// arrives through edge device dev for a destination that the spec routes
// through another device and that lies inside one of its mappings' global
// ranges (a sibling candidate's pod range image). They go before dev's
// NETMAP rules. It is pure; what does not parse is skipped.
func imageReturns(spec *v1alpha1.NodeConfigSpec, dev string) []familyRule {
	var globals []netip.Prefix
	for _, m := range spec.NAT.Mappings {
		if g, err := netip.ParsePrefix(m.GlobalCIDR); err == nil {
			globals = append(globals, g.Masked())
		}
	}
	var out []familyRule
	for _, r := range spec.Routes {
		if r.Device == dev {
			continue
		}
		d, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			continue
		}
		d = d.Masked()
		if slices.ContainsFunc(globals, func(g netip.Prefix) bool { return g.Contains(d.Addr()) && d.Bits() >= g.Bits() }) {
			fam := "ipv4"
			if d.Addr().Is6() {
				fam = "ipv6"
			}
			r := familyRule{fam: fam, chain: ChainPrerouting, rule: fmt.Sprintf("-d %s -i %s -j RETURN", d, dev)}
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}
