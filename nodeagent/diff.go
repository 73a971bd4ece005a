package nodeagent

import (
	"fmt"
	"strings"
)

// Design notes: how a link that differs is made to match.
//
// A VXLAN device's VNI, UDP port, local address and parent device are fixed
// when the kernel creates it; changing one means deleting the device and
// adding it again, and its addresses, routes, FDB and neighbour entries go
// with it and are re-added. Its MTU and MAC are ordinary link attributes the
// kernel changes on a live device, and its addresses are separate objects
// diffed one by one, so none of them is a reason to recreate. linkMismatch
// makes that call, purely, and says why in words; the reason travels with
// the operations into Set's result (and so into the NodeConfig's
// lastChanges) and the agent's log. This follows flannel's vxlan ensureLink,
// which compares an existing device with the wanted one and recreates it
// only with a reason.
//
// One catch, seen on a real kernel: a new MAC flushes the device's neighbour
// entries, permanent ones included (neigh_changeaddr), so after a MAC change
// they are re-added as for a recreated device; routes, FDB entries and
// addresses stay. A new MTU keeps everything (but an IPv6 device below 1280
// loses IPv6 altogether, in place or not).
//
// History: until the house issue any difference recreated the device, MTU
// and MAC included, so an MTU change cut every tunnel of the node for a
// moment.

// OpKind is what an operation does.
type OpKind int

// Operation kinds.
const (
	OpAdd OpKind = iota
	OpDel
	// OpSet changes an object in place: it writes a table's chains (rule
	// order matters), replaces the agent's route to a destination, or sets
	// the MTU and MAC of a link.
	OpSet
)

// Op is one kernel write. Exactly one of the object fields is set.
type Op struct {
	Kind  OpKind
	Link  *Link
	Addr  *Addr
	Route *Route
	FDB   *FDB
	Neigh *Neigh
	// Chains is one transaction on one table's chains; its Kind is OpSet
	// when it writes a chain, OpDel when it only removes.
	Chains *ChainSet
	// Sysctl is a setting written (always OpSet).
	Sysctl *Sysctl
	// Offload is an offload feature set (always OpSet).
	Offload *Offload
	// Set is a write to one of the agent's ipsets (ipset.go).
	Set *SetChange
	// Reason says why a link is changed in place or recreated (set on the
	// set, and on both the delete and the add of a recreate).
	Reason string
}

func (o Op) String() string {
	verb := map[OpKind]string{OpAdd: "add", OpDel: "del", OpSet: "set"}[o.Kind]
	switch {
	case o.Link != nil && o.Reason != "" && o.Kind != OpSet:
		return fmt.Sprintf("%s link %s (recreate: %s)", verb, o.Link.Name, o.Reason)
	case o.Link != nil && o.Reason != "":
		return fmt.Sprintf("%s link %s (%s)", verb, o.Link.Name, o.Reason)
	case o.Link != nil:
		return fmt.Sprintf("%s link %s", verb, o.Link.Name)
	case o.Addr != nil:
		return fmt.Sprintf("%s addr %s dev %s", verb, o.Addr.CIDR, o.Addr.Dev)
	case o.Route != nil:
		return fmt.Sprintf("%s route %s via %s dev %s", verb, o.Route.Dst, o.Route.Via, o.Route.Dev)
	case o.FDB != nil:
		return fmt.Sprintf("%s fdb %s dst %s dev %s", verb, o.FDB.MAC, o.FDB.Dst, o.FDB.Dev)
	case o.Neigh != nil:
		return fmt.Sprintf("%s neigh %s dev %s", verb, o.Neigh.IP, o.Neigh.Dev)
	case o.Sysctl != nil:
		return fmt.Sprintf("%s sysctl %s", verb, o.Sysctl)
	case o.Offload != nil && o.Reason != "":
		return fmt.Sprintf("%s offload %s (%s)", verb, o.Offload, o.Reason)
	case o.Offload != nil:
		return fmt.Sprintf("%s offload %s", verb, o.Offload)
	case o.Chains != nil:
		return fmt.Sprintf("%s %s", verb, o.Chains)
	case o.Set != nil && o.Reason != "":
		return fmt.Sprintf("%s %s (recreate: %s)", verb, o.Set, o.Reason)
	case o.Set != nil:
		return fmt.Sprintf("%s %s", verb, o.Set)
	}
	return verb
}

// linkMismatch compares the link the kernel holds with the wanted one (same
// name). An empty reason means they are equal. Otherwise recreate says
// whether the device must be deleted and added again, because its VNI, port,
// local address or parent differ, and reason names those fields, old value
// then new ("vni 54 → 55, port 4876 → 4877"); when only the MTU or MAC
// differ, recreate is false and reason names them.
func linkMismatch(have, want Link) (recreate bool, reason string) {
	var identity, attrs []string
	differ := func(list *[]string, field string, h, w any) {
		if h != w {
			*list = append(*list, fmt.Sprintf("%s %v → %v", field, orNone(h), orNone(w)))
		}
	}
	differ(&identity, "vni", have.VNI, want.VNI)
	differ(&identity, "port", have.Port, want.Port)
	differ(&identity, "local", have.Local, want.Local)
	differ(&identity, "parent", have.Parent, want.Parent)
	differ(&attrs, "mtu", have.MTU, want.MTU)
	differ(&attrs, "mac", have.MAC, want.MAC)
	if len(identity) > 0 {
		return true, strings.Join(identity, ", ")
	}
	return false, strings.Join(attrs, ", ")
}

func orNone(v any) any {
	if v == "" {
		return "none"
	}
	return v
}

// Diff returns the operations that turn current into desired: additions and
// in-place changes first (devices, their sysctls and offloads, the sets the
// rules match, then addresses, neighbours, FDB, routes, chains), then
// deletions in reverse dependency order (a set after the chains that match
// it), so traffic that stays desired never loses its path. A link whose MTU or MAC differ is changed in
// place; one whose VNI, port, local address or parent differ is recreated
// (see the design notes above, and linkMismatch). Equal states yield no
// operation.
func Diff(current, desired State) []Op {
	adds, linkDels, recreated, newMAC := diffLinks(current.Links, desired.Links)
	adds = append(adds, diffSysctls(current.Sysctls, desired.Sysctls, recreated)...)
	adds = append(adds, diffOffloads(current.Offloads, desired.Offloads, recreated)...)
	setAdds, setRemovals, setDels := diffSets(current.Sets, desired.Sets)
	adds = append(adds, setAdds...)
	var dels []Op
	keep := func(dev string) bool { return !recreated[dev] }
	keepNeigh := func(dev string) bool { return !recreated[dev] && !newMAC[dev] }
	adds = append(adds, diffSet(current.Addrs, desired.Addrs, func(a Addr) string { return a.Dev }, keep, func(k OpKind, a Addr) Op { return Op{Kind: k, Addr: &a} }, &dels)...)
	adds = append(adds, diffSet(current.Neighs, desired.Neighs, func(n Neigh) string { return n.Dev }, keepNeigh, func(k OpKind, n Neigh) Op { return Op{Kind: k, Neigh: &n} }, &dels)...)
	adds = append(adds, diffSet(current.FDB, desired.FDB, func(f FDB) string { return f.Dev }, keep, func(k OpKind, f FDB) Op { return Op{Kind: k, FDB: &f} }, &dels)...)
	adds = append(adds, diffRoutes(current.Routes, desired.Routes, keep, &dels)...)
	chainSets, chainDels := diffChains(current.Chains, desired.Chains)
	adds = append(adds, chainSets...)
	dels = append(setRemovals, dels...)
	dels = append(dels, chainDels...)
	dels = append(dels, setDels...)
	dels = append(dels, linkDels...)
	return append(adds, dels...)
}

// diffLinks returns the link writes of the add phase (new links, in-place
// changes, recreates), the deletions of links no longer desired (the last
// writes of all), the names of the links being recreated and of those
// changed in place to a new MAC.
func diffLinks(current, desired []Link) (adds, dels []Op, recreated, newMAC map[string]bool) {
	recreated, newMAC = map[string]bool{}, map[string]bool{}
	curLinks := index(current, func(l Link) string { return l.Name })
	for i := range desired {
		l := desired[i]
		c, ok := curLinks[l.Name]
		if !ok {
			adds = append(adds, Op{Kind: OpAdd, Link: &l})
			continue
		}
		switch recreate, reason := linkMismatch(c, l); {
		case reason == "":
		case recreate:
			recreated[l.Name] = true
			adds = append(adds, Op{Kind: OpDel, Link: &c, Reason: reason}, Op{Kind: OpAdd, Link: &l, Reason: reason})
		default:
			newMAC[l.Name] = c.MAC != l.MAC
			adds = append(adds, Op{Kind: OpSet, Link: &l, Reason: reason})
		}
	}
	want := index(desired, func(l Link) string { return l.Name })
	for i := range current {
		if _, ok := want[current[i].Name]; !ok {
			l := current[i]
			dels = append(dels, Op{Kind: OpDel, Link: &l})
		}
	}
	return adds, dels, recreated, newMAC
}

// diffRoutes compares routes by destination, the kernel's key together with
// the table and metric, which the agent does not vary: a new destination is
// added, one whose next hop or device changed is replaced in place (OpSet:
// an add and a delete of the same key would fight), one no longer desired
// is deleted. Routes of a device being recreated (keep false) went with it
// and are added again. Deletions are prepended to dels, as in diffSet.
func diffRoutes(current, desired []Route, keep func(string) bool, dels *[]Op) []Op {
	cur := index(current, func(r Route) string { return r.Dst })
	want := make(map[string]bool, len(desired))
	var adds []Op
	for _, d := range desired {
		want[d.Dst] = true
		switch c, ok := cur[d.Dst]; {
		case !ok || !keep(c.Dev):
			adds = append(adds, Op{Kind: OpAdd, Route: &d})
		case c != d:
			adds = append(adds, Op{Kind: OpSet, Route: &d})
		}
	}
	var mine []Op
	for _, c := range current {
		if !want[c.Dst] && keep(c.Dev) {
			mine = append(mine, Op{Kind: OpDel, Route: &c})
		}
	}
	*dels = append(mine, *dels...)
	return adds
}

// diffSet adds what desired has and current lacks; it appends deletions of
// what current has and desired lacks to dels. Entries of a device being
// recreated (keep false) are re-added even when present, and not deleted:
// the kernel dropped them.
func diffSet[T comparable](current, desired []T, dev func(T) string, keep func(string) bool, op func(OpKind, T) Op, dels *[]Op) []Op {
	cur := make(map[T]bool, len(current))
	for _, c := range current {
		cur[c] = true
	}
	want := make(map[T]bool, len(desired))
	var adds []Op
	for _, d := range desired {
		want[d] = true
		if !cur[d] || !keep(dev(d)) {
			adds = append(adds, op(OpAdd, d))
		}
	}
	// Deletions run in reverse order of the add phases: routes before FDB
	// before neighbours before addresses (prepending keeps that order).
	var mine []Op
	for _, c := range current {
		if !want[c] && keep(dev(c)) {
			mine = append(mine, op(OpDel, c))
		}
	}
	*dels = append(mine, *dels...)
	return adds
}

func index[T any](xs []T, key func(T) string) map[string]T {
	m := make(map[string]T, len(xs))
	for _, x := range xs {
		m[key(x)] = x
	}
	return m
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
