package nodeagent

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// ResetNATFlows deletes the conntrack entries of f (both families) in the
// calling thread's network namespace.
func ResetNATFlows(f NATFlowSet) (int, error) {
	var total uint
	for _, fam := range []netlink.InetFamily{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		n, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, fam, ctFilter{f})
		total += n
		if err != nil {
			return int(total), err
		}
	}
	return int(total), nil
}

type ctFilter struct{ f NATFlowSet }

func (c ctFilter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	src, ok1 := addrOf(flow.Forward.SrcIP)
	dst, ok2 := addrOf(flow.Forward.DstIP)
	return ok1 && ok2 && c.f.matches(src, dst)
}

func addrOf(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}
