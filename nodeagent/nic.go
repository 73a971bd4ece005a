package nodeagent

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// nicInfo is what the NIC chooser knows of one interface.
type nicInfo struct {
	Name  string
	Addrs []netip.Addr
}

// chooseNIC picks the interface a device's tunnel is bound to (its parent)
// from the node's interfaces, as network.nic says (v1alpha1.ParseNIC):
//   - auto: the interface holding the underlay address local;
//   - a name: that interface, which must exist;
//   - cidr:<CIDR>: an interface holding an address in the CIDR, the one
//     holding local when it is among them, else the first by name;
//   - can-reach:<IP>: the interface routeTo says the route to the IP
//     leaves through.
//
// It is pure but for routeTo, the kernel's route lookup.
func chooseNIC(nic string, local netip.Addr, ifaces []nicInfo, routeTo func(netip.Addr) (string, error)) (string, error) {
	sel, err := v1alpha1.ParseNIC(nic)
	if err != nil {
		return "", err
	}
	ifaces = slices.Clone(ifaces)
	slices.SortFunc(ifaces, func(a, b nicInfo) int { return cmp.Compare(a.Name, b.Name) })
	holds := func(i nicInfo, match func(netip.Addr) bool) bool { return slices.ContainsFunc(i.Addrs, match) }
	switch {
	case sel.Auto:
		for _, i := range ifaces {
			if holds(i, func(a netip.Addr) bool { return a == local }) {
				return i.Name, nil
			}
		}
		return "", fmt.Errorf("no interface holds the underlay address %s", local)
	case sel.Name != "":
		if slices.ContainsFunc(ifaces, func(i nicInfo) bool { return i.Name == sel.Name }) {
			return sel.Name, nil
		}
		return "", fmt.Errorf("interface %s: not found", sel.Name)
	case sel.CIDR.IsValid():
		var found []string
		for _, i := range ifaces {
			if holds(i, func(a netip.Addr) bool { return a == local && sel.CIDR.Contains(a) }) {
				return i.Name, nil
			}
			if holds(i, sel.CIDR.Contains) {
				found = append(found, i.Name)
			}
		}
		if len(found) == 0 {
			return "", fmt.Errorf("nic %s: no interface has an address in %s", nic, sel.CIDR)
		}
		return found[0], nil
	default:
		name, err := routeTo(sel.CanReach)
		if err != nil {
			return "", fmt.Errorf("nic %s: route to %s: %w", nic, sel.CanReach, err)
		}
		return name, nil
	}
}
