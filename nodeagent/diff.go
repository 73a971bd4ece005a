package nodeagent

import "fmt"

// OpKind is what an operation does.
type OpKind int

// Operation kinds.
const (
	OpAdd OpKind = iota
	OpDel
	// OpSetChain replaces the rules of one chain (rule order matters).
	OpSetChain
)

// Op is one kernel write. Exactly one of the object fields is set.
type Op struct {
	Kind  OpKind
	Link  *Link
	Addr  *Addr
	Route *Route
	FDB   *FDB
	Neigh *Neigh
	Chain *Chain
}

func (o Op) String() string {
	verb := map[OpKind]string{OpAdd: "add", OpDel: "del", OpSetChain: "set"}[o.Kind]
	switch {
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
	case o.Chain != nil:
		return fmt.Sprintf("%s chain %s (%d rules)", verb, o.Chain.Key(), len(o.Chain.Rules))
	}
	return verb
}

// Diff returns the operations that turn current into desired: additions
// first (devices, then addresses, neighbours, FDB, routes, chains), then
// deletions in reverse dependency order, so traffic that stays desired never
// loses its path. A link whose identity changed (VNI, port, MAC, local
// address, parent, MTU) is recreated: deleted and added again; its dependent
// entries then go with it and are re-added. Equal states yield no operation.
func Diff(current, desired State) []Op {
	var adds, dels []Op
	recreated := map[string]bool{}
	curLinks := index(current.Links, func(l Link) string { return l.Name })
	for i := range desired.Links {
		l := desired.Links[i]
		c, ok := curLinks[l.Name]
		switch {
		case !ok:
			adds = append(adds, Op{Kind: OpAdd, Link: &l})
		case c != l:
			// Recreate: the kernel cannot change a VXLAN device's VNI, port
			// or local address in place.
			recreated[l.Name] = true
			adds = append(adds, Op{Kind: OpDel, Link: &c}, Op{Kind: OpAdd, Link: &l})
		}
	}
	keep := func(dev string) bool { return !recreated[dev] }
	adds = append(adds, diffSet(current.Addrs, desired.Addrs, func(a Addr) string { return a.Dev }, keep, func(k OpKind, a Addr) Op { return Op{Kind: k, Addr: &a} }, &dels)...)
	adds = append(adds, diffSet(current.Neighs, desired.Neighs, func(n Neigh) string { return n.Dev }, keep, func(k OpKind, n Neigh) Op { return Op{Kind: k, Neigh: &n} }, &dels)...)
	adds = append(adds, diffSet(current.FDB, desired.FDB, func(f FDB) string { return f.Dev }, keep, func(k OpKind, f FDB) Op { return Op{Kind: k, FDB: &f} }, &dels)...)
	adds = append(adds, diffSet(current.Routes, desired.Routes, func(r Route) string { return r.Dev }, keep, func(k OpKind, r Route) Op { return Op{Kind: k, Route: &r} }, &dels)...)

	curChains := index(current.Chains, Chain.Key)
	for i := range desired.Chains {
		c := desired.Chains[i]
		if cur, ok := curChains[c.Key()]; !ok || !equalStrings(cur.Rules, c.Rules) {
			adds = append(adds, Op{Kind: OpSetChain, Chain: &c})
		}
	}
	desiredChains := index(desired.Chains, Chain.Key)
	for i := range current.Chains {
		if _, ok := desiredChains[current.Chains[i].Key()]; !ok {
			c := current.Chains[i]
			dels = append(dels, Op{Kind: OpDel, Chain: &c})
		}
	}
	desiredLinks := index(desired.Links, func(l Link) string { return l.Name })
	for i := range current.Links {
		if _, ok := desiredLinks[current.Links[i].Name]; !ok {
			l := current.Links[i]
			dels = append(dels, Op{Kind: OpDel, Link: &l})
		}
	}
	return append(adds, dels...)
}

// diffSet adds what desired has and current lacks; it appends deletions of
// what current has and desired lacks to dels. Entries of a device being
// recreated (keep false) are re-added even when present, and not deleted.
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
