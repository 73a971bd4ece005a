package nodeagent

// Design notes: no masquerade towards other clusters.
//
// CNIs and kube-proxy masquerade what leaves their pod range: flannel's
// `-s <pods> ! -d <pods> -j MASQUERADE` (--ip-masq), Calico's natOutgoing,
// ip-masq-agent, kube-proxy's --masquerade-all and --cluster-cidr rules.
// Traffic from a local pod to a pod or service of another cluster would
// reach it with the node's (or a tunnel's) address: NetworkPolicies and logs
// there see the wrong sender. So the agent's nat chain KOSMOS-POSTROUTING,
// which POSTROUTING jumps to first, goes on after its 1:1 NETMAP rules
// (which must still translate a mapped range; NETMAP ends the nat table for
// the packets it maps) to KOSMOS-NOMASQ, which ACCEPTs, for the nat table,
// what a local range sends to a remote range: the packet leaves
// POSTROUTING with its own source, and no later rule of the table (the
// CNI's, kube-proxy's) sees it. ACCEPT in the nat table only ends address
// translation; filtering is untouched.
//
// The local ranges are the node's localCIDRs (its cluster's real pod and
// service ranges); the remote ranges are the destinations of the routes
// the agent holds (every remote cluster's pod blocks and service ranges,
// their global images where mapped), merged into as few prefixes as cover
// exactly the same addresses, so that per-node Calico blocks that tile a
// range cost one rule, not one each.
//
// A Calico cluster needs more: Calico's own chains masquerade by ipsets of
// its pools, which see the packet before or after ours depending on the
// order of jumps in POSTROUTING; the reconciler keeps disabled IPPools for
// the remote ranges (reconciler/desired/ipam.go) so that Calico itself
// leaves them alone.

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// ChainNoMasq holds the no-masquerade rules; it is reached from
// ChainPostrouting, right after the 1:1 mappings.
const ChainNoMasq = "KOSMOS-NOMASQ"

// noMasqRules are the rules of ChainNoMasq: for every local range and every
// merged remote range of the same family, an ACCEPT.
func noMasqRules(spec *v1alpha1.NodeConfigSpec) []familyRule {
	var remote []netip.Prefix
	for _, r := range spec.Routes {
		if pr, err := netip.ParsePrefix(r.Dst); err == nil {
			remote = append(remote, pr.Masked())
		}
	}
	remote = mergePrefixes(remote)
	var out []familyRule
	for _, l := range spec.LocalCIDRs {
		src, err := netip.ParsePrefix(l)
		if err != nil {
			continue
		}
		src = src.Masked()
		fam := addrFamily(src.Addr())
		for _, dst := range remote {
			if dst.Addr().Is4() == src.Addr().Is4() {
				out = append(out, familyRule{fam, ChainNoMasq, fmt.Sprintf("-s %s -d %s -j ACCEPT", src, dst)})
			}
		}
	}
	return out
}

// mergePrefixes returns the fewest prefixes that cover exactly the addresses
// of ps: prefixes inside others dropped, sibling halves joined, sorted. It
// is pure.
func mergePrefixes(ps []netip.Prefix) []netip.Prefix {
	out := slices.Clone(ps)
	for {
		slices.SortFunc(out, func(a, b netip.Prefix) int {
			return cmp.Or(cmp.Compare(boolInt(a.Addr().Is4()), boolInt(b.Addr().Is4())), a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
		})
		out = slices.Compact(out)
		var next []netip.Prefix
		changed := false
		for _, p := range out {
			if n := len(next); n > 0 {
				last := next[n-1]
				if last.Addr().Is4() == p.Addr().Is4() && last.Bits() <= p.Bits() && last.Contains(p.Addr()) {
					changed = true
					continue // inside the previous one
				}
				if last.Bits() == p.Bits() && last.Bits() > 0 && last.Addr().Is4() == p.Addr().Is4() {
					parent, _ := last.Addr().Prefix(last.Bits() - 1)
					if parent.Addr() == last.Addr() && parent.Contains(p.Addr()) {
						next[n-1] = parent
						changed = true
						continue
					}
				}
			}
			next = append(next, p)
		}
		out = next
		if !changed {
			return out
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
