package nodeagent

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"kosmos.io/kosmos/internal/peering"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Settle makes the kernel hold the wanted transit routing after a pass
// (spec nil: the config is gone, and the rules and routes are removed).
// Routes go before rules when adding, rules before routes when removing.
//
// After a pass whose Set failed (setErr), the transit of the last good
// pass stays, like the main table Set kept.
func (t *TransitRouting) Settle(spec *v1alpha1.NodeConfigSpec, setErr error) error {
	var want peering.Transit
	if spec != nil {
		want = t.settleTarget(setErr == nil)
	}
	if want.Empty() {
		return TeardownTransit()
	}
	return errors.Join(syncTransitRoutes(want), syncTransitRules(transitRules(want)))
}

// TeardownTransit removes the agent's transit rules and the routes of its
// transit table.
func TeardownTransit() error {
	return errors.Join(syncTransitRules(nil), syncTransitRoutes(peering.Transit{}))
}

func routeKey(dst *net.IPNet, gw net.IP, link int) string {
	return fmt.Sprintf("%s via %s dev %d", dst, gw, link)
}

func syncTransitRoutes(want peering.Transit) error {
	var errs []error
	wanted := map[string]*netlink.Route{}
	var keys []string
	for _, r := range want.Routes {
		nr, err := netlinkRoute(&Route{Dst: r.Dst, Via: r.Via, Dev: r.Device})
		if err != nil {
			errs = append(errs, fmt.Errorf("transit route %s via %s dev %s: %w", r.Dst, r.Via, r.Device, err))
			continue
		}
		nr.Table = TransitTable
		k := routeKey(nr.Dst, nr.Gw, nr.LinkIndex)
		wanted[k] = nr
		keys = append(keys, k)
	}
	held, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: TransitTable, Protocol: RouteProtocol}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list table %d: %w", TransitTable, err))...)
	}
	heldBy := map[string]netlink.Route{}
	var heldKeys []string
	for _, h := range held {
		if h.Dst == nil {
			continue
		}
		k := routeKey(h.Dst, h.Gw, h.LinkIndex)
		heldBy[k] = h
		heldKeys = append(heldKeys, k)
	}
	add, del := keyDiff(keys, heldKeys)
	for _, k := range add {
		if err := netlink.RouteReplace(wanted[k]); err != nil {
			errs = append(errs, fmt.Errorf("add route %s table %d: %w", k, TransitTable, err))
		}
	}
	for _, k := range del {
		h := heldBy[k]
		if err := netlink.RouteDel(&h); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s table %d: %w", k, TransitTable, err))
		}
	}
	return errors.Join(errs...)
}

func ruleKey(fam int, dev string) string { return fmt.Sprintf("%d iif %s", fam, dev) }

// syncTransitRules makes the agent's rules at TransitRulePriority exactly
// want. Rules of other owners there are never touched.
func syncTransitRules(want []transitRule) error {
	var errs []error
	for _, fam := range []int{4, 6} {
		var keys []string
		for _, r := range want {
			if r.fam == fam {
				keys = append(keys, ruleKey(fam, r.dev))
			}
		}
		held, err := netlink.RuleListFiltered(familyOf(fam), &netlink.Rule{Priority: TransitRulePriority}, netlink.RT_FILTER_PRIORITY)
		if err != nil {
			if fam == 6 && errors.Is(err, unix.EAFNOSUPPORT) {
				continue // IPv6 is off on this host: no IPv6 transit to hold
			}
			errs = append(errs, fmt.Errorf("list rules: %w", err))
			continue
		}
		heldBy := map[string]netlink.Rule{}
		var heldKeys []string
		for _, h := range held {
			if h.Protocol != RouteProtocol || h.Table != TransitTable {
				continue
			}
			k := ruleKey(fam, h.IifName)
			heldBy[k] = h
			heldKeys = append(heldKeys, k)
		}
		add, del := keyDiff(keys, heldKeys)
		for _, k := range del {
			h := heldBy[k]
			h.Family = familyOf(fam)
			if err := netlink.RuleDel(&h); err != nil {
				errs = append(errs, fmt.Errorf("delete rule priority %d %s: %w", TransitRulePriority, k, err))
			}
		}
		for _, r := range want {
			if r.fam != fam || !slices.Contains(add, ruleKey(fam, r.dev)) {
				continue
			}
			nr := netlink.NewRule()
			nr.Family, nr.Priority, nr.Table, nr.Protocol = familyOf(fam), TransitRulePriority, TransitTable, RouteProtocol
			nr.IifName = r.dev
			if err := netlink.RuleAdd(nr); err != nil {
				if fam == 6 && errors.Is(err, unix.EAFNOSUPPORT) {
					continue
				}
				errs = append(errs, fmt.Errorf("add rule priority %d iif %s lookup %d: %w", TransitRulePriority, r.dev, TransitTable, err))
			}
		}
	}
	return errors.Join(errs...)
}
