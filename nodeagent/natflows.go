package nodeagent

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// NAT state across a move of a gateway candidate's own way out (gateway
// HA). A candidate translates its own pods' flows (GlobalCIDR NETMAP) only
// while it is the candidate in use; otherwise it sends them untranslated
// over vx-local to the one in use, which translates them. NAT is bound to
// conntrack entries: when the candidate in use changes (a failover, or a
// move of the plan), a flow that was running keeps the binding of its
// first packet. On the old candidate in use its pods' packets stay
// translated and reach the new one already global, which masquerades them
// behind its own address, so the replies are lost; on the new one its pods'
// packets stay untranslated. Such a flow never heals while it keeps
// sending (an ICMP echo stream, a TCP connection). So after every pass
// that changed how an edge node routes out, the agent deletes the
// conntrack entries of flows from its cluster's mapped real ranges to the
// ranges it routes to other clusters: the next packet of each flow is
// tracked again (TCP is picked up mid-stream) and translated where it now
// leaves. NETMAP is 1:1 and stateless, so no address changes for a flow
// that did not move. Flows into the cluster by its global addresses are
// reset as well, and an edge agent also resets on its first pass: after a
// restart it cannot know where traffic went meanwhile, and entries kept
// from before a move away and back hold a binding (and a TCP window) that
// may no longer fit. Only those flows are touched: a pod's flows to
// anywhere else (the internet, its own cluster) keep their entries.

// NATFlowSet are the flows whose conntrack entries must be tracked again:
// original source in one of Real and original destination in one of Remote
// (flows out of the cluster), or original source in one of Remote and
// original destination in one of Global (flows into it, by its global
// addresses).
type NATFlowSet struct {
	Real, Global, Remote []netip.Prefix
}

func (f NATFlowSet) empty() bool { return len(f.Real) == 0 || len(f.Remote) == 0 }

// matches says a flow's original direction is one of f.
func (f NATFlowSet) matches(src, dst netip.Addr) bool {
	in := func(a netip.Addr, ps []netip.Prefix) bool {
		return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) })
	}
	return (in(src, f.Real) && in(dst, f.Remote)) || (in(src, f.Remote) && in(dst, f.Global))
}

// natFlowsToReset says which flows to track again after a pass moved from
// config prev to next: none unless next translates (it is an edge:
// mappings on edge devices). On the agent's first pass (prev nil: it cannot
// know where traffic went while it was away, and entries kept from before
// a move away and back would judge the flows' sequence numbers by a window
// long past) the flows to every routed range; after that only the flows to
// the ranges whose way out moved: the route left an edge device for a
// sibling over vx-local or came back, or went to another sibling. A range
// that only appeared or went (a node joined or left a remote cluster) or
// whose remote next hop changed behind the same edge device (a remote
// gateway failover, a P2P node's new address) keeps this node's NAT
// binding: nothing is reset for it. It is pure.
func natFlowsToReset(prev, next *v1alpha1.NodeConfigSpec) NATFlowSet {
	if next == nil || len(next.NAT.EdgeDevices) == 0 || len(next.NAT.Mappings) == 0 {
		return NATFlowSet{}
	}
	moved := movedWaysOut(prev, next)
	if prev != nil && len(moved) == 0 {
		return NATFlowSet{}
	}
	var f NATFlowSet
	for _, m := range next.NAT.Mappings {
		if p, err := netip.ParsePrefix(m.RealCIDR); err == nil {
			f.Real = append(f.Real, p.Masked())
		}
		if p, err := netip.ParsePrefix(m.GlobalCIDR); err == nil {
			f.Global = append(f.Global, p.Masked())
		}
	}
	for _, r := range next.Routes {
		if prev != nil && !moved[r.Dst] {
			continue
		}
		if p, err := netip.ParsePrefix(r.Dst); err == nil && !slices.Contains(f.Remote, p.Masked()) {
			f.Remote = append(f.Remote, p.Masked())
		}
	}
	return f
}

// movedWaysOut are the destinations of next whose way out differs from
// that of a route of prev they overlap (a node's own routes may be per
// remote node in one config and per remote cluster in the other): the edge
// device they leave by (the next hop behind an edge device does not count:
// this node translates either way) or, off the edge, the device and the
// sibling they are handed to. A destination no route of prev overlaps is
// new and has no flows to move.
func movedWaysOut(prev, next *v1alpha1.NodeConfigSpec) map[string]bool {
	if prev == nil {
		return nil
	}
	wayOut := func(r v1alpha1.Route) string {
		if slices.Contains(next.NAT.EdgeDevices, r.Device) {
			return r.Device
		}
		return r.Device + " via " + r.Via
	}
	moved := map[string]bool{}
	for _, r := range next.Routes {
		dst, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			continue
		}
		for _, p := range prev.Routes {
			if q, err := netip.ParsePrefix(p.Dst); err == nil && q.Overlaps(dst) && wayOut(p) != wayOut(r) {
				moved[r.Dst] = true
				break
			}
		}
	}
	return moved
}

// NATFlows deletes, after a pass that moved an edge node's way out, the
// conntrack entries of the flows that must be translated again (see
// above). Settle is an After hook of Run; Reset does the deletion (nil:
// nothing is deleted).
type NATFlows struct {
	Reset func(f NATFlowSet) (int, error)
	Log   *slog.Logger
	last  *v1alpha1.NodeConfigSpec
}

// Settle compares the config a pass applied with the one before; a pass
// that failed, or held no config, leaves the comparison where it was.
func (n *NATFlows) Settle(spec *v1alpha1.NodeConfigSpec, passErr error) error {
	if spec == nil || passErr != nil {
		return nil
	}
	f := natFlowsToReset(n.last, spec)
	if f.empty() || n.Reset == nil {
		n.last = spec
		return nil
	}
	deleted, err := n.Reset(f)
	if err != nil {
		// n.last stays: the next good pass compares with it and tries again.
		return fmt.Errorf("delete the conntrack entries of flows to other clusters after the way out moved: %w", err)
	}
	n.last = spec
	if n.Log != nil && deleted > 0 {
		n.Log.Info("way out moved: flows to other clusters tracked again", "conntrackEntries", deleted)
	}
	return nil
}
