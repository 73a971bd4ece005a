package nodeagent

import (
	"fmt"
	"net/netip"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Design notes: packets a sibling gateway candidate already translated.
//
// With gateway HA the candidates of a cluster do not always agree on the
// one in use: a node behind them may send through candidate A while A
// itself routes the cluster's outbound traffic through candidate B over
// vx-local (a failover or failback that one agent made before another).
// A forwards such a packet under its own conntrack entry, and that entry
// can already hold the GlobalCIDR binding: it was created by the remote
// side's packet that entered through A (the receiver sends through A), so
// the node's packet is translated in the reply direction and leaves A
// over vx-local carrying the cluster's global address. At B that packet
// used to be masqueraded (its source is not a real range) behind B's own
// tunnel address: the receiver saw an unknown source, answered with a
// reset, and the reset found its way back to the sender through the
// de-masquerade, killing the connection (issue 15: the g4 → e1 stream of
// TestGatewayFailover). Had B tracked it without masquerading, the entry
// would still have held the global tuple, so that the first packet of the
// same connection sent straight through B later would have been given
// another source port by NAT to keep tuples unique: a reset again.
//
// A packet whose source is already one of the cluster's global ranges is
// translated and must leave exactly as it is. So an edge node leaves such
// packets untracked (raw table, CT --notrack): no NAT touches them and no
// conntrack entry can clash with the flow's own translated tuple.

// ChainNoTrack is the agent's chain in the raw table's PREROUTING.
const ChainNoTrack = "KOSMOS-NOTRACK"

// noTrackRules are the rules of ChainNoTrack for spec, by family: one per
// GlobalCIDR of a node that translates (an edge with mappings), none
// otherwise. It is pure.
func noTrackRules(spec *v1alpha1.NodeConfigSpec) map[string][]string {
	if len(spec.NAT.EdgeDevices) == 0 {
		return nil
	}
	out := map[string][]string{}
	for _, m := range spec.NAT.Mappings {
		p, err := netip.ParsePrefix(m.GlobalCIDR)
		if err != nil {
			continue
		}
		fam := "ipv4"
		if !p.Addr().Is4() {
			fam = "ipv6"
		}
		out[fam] = append(out[fam], fmt.Sprintf("-s %s -j CT --notrack", p.Masked()))
	}
	return out
}
