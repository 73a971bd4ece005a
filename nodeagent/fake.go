package nodeagent

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// FakeKernel is an in-memory Kernel for tests of the pure logic. It keeps the
// State, counts writes, and drops a device's entries with the device, as the
// kernel does. Routes are keyed on their destination, as in the kernel's
// main table; S.Others.Routes stands for other owners' routes, which an add
// refuses to take. It is not a proof that anything works on a real kernel.
type FakeKernel struct {
	S      State
	Writes int
	// SysctlErr, when set, fails every sysctl write (a read-only
	// /proc/sys).
	SysctlErr error
	// RefuseOffloads, keyed "dev/feature", refuses those offload writes
	// as a kernel does for a device that cannot change them.
	RefuseOffloads map[string]bool
}

// Read returns a normalized copy of the fake's state.
func (f *FakeKernel) Read() (State, error) {
	s := State{
		Links: slices.Clone(f.S.Links), Addrs: slices.Clone(f.S.Addrs), Routes: slices.Clone(f.S.Routes),
		FDB: slices.Clone(f.S.FDB), Neighs: slices.Clone(f.S.Neighs), Chains: slices.Clone(f.S.Chains),
		Sets:   cloneSets(f.S.Sets),
		Others: Others{Routes: maps.Clone(f.S.Others.Routes), Addrs: slices.Clone(f.S.Others.Addrs)},
	}
	// Like the Linux kernel's Read: the keys the devices rely on, with the
	// values held (a key never written reads 0, a new namespace's default).
	held := index(f.S.Sysctls, func(x Sysctl) string { return x.Key })
	for _, x := range sysctlsFor(f.S.Links) {
		x.Value = servedValue(x, cmp.Or(held[x.Key].Value, "0"))
		s.Sysctls = append(s.Sysctls, x)
	}
	// Offloads: a VXLAN device's defaults (on) unless set otherwise.
	set := index(f.S.Offloads, func(o Offload) string { return o.Dev + "/" + o.Feature })
	for _, o := range offloadsFor(f.S.Links) {
		if x, ok := set[o.Dev+"/"+o.Feature]; ok {
			o.On = x.On
		}
		s.Offloads = append(s.Offloads, o)
	}
	s.Normalize()
	return s, nil
}

// Resolve gives an automatic parent the name "eth0" and MTU 0 the value 1450,
// as for a 1500-byte underlay.
func (f *FakeKernel) Resolve(l *Link) error {
	if l.Parent == "" || l.Parent == "auto" {
		l.Parent = "eth0"
	}
	if l.MTU == 0 {
		l.MTU = 1450
	}
	return nil
}

// Apply performs one operation, failing as the kernel would on a duplicate
// or a missing object; the error names the operation.
func (f *FakeKernel) Apply(op Op) error {
	f.Writes++
	var taken *RouteTakenError
	if err := f.apply(op); errors.As(err, &taken) {
		return err // it names the operation itself
	} else if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func (f *FakeKernel) apply(op Op) error {
	s := &f.S
	hasLink := func(name string) bool {
		return slices.ContainsFunc(s.Links, func(l Link) bool { return l.Name == name })
	}
	switch {
	case op.Link != nil:
		return f.applyLink(op.Kind, *op.Link)
	case op.Addr != nil:
		return fakeSet(&s.Addrs, *op.Addr, op.Kind, hasLink(op.Addr.Dev))
	case op.Route != nil:
		return f.applyRoute(op.Kind, *op.Route, hasLink(op.Route.Dev))
	case op.FDB != nil:
		return fakeSet(&s.FDB, *op.FDB, op.Kind, hasLink(op.FDB.Dev))
	case op.Neigh != nil:
		return fakeSet(&s.Neighs, *op.Neigh, op.Kind, hasLink(op.Neigh.Dev))
	case op.Sysctl != nil:
		held := slices.IndexFunc(s.Sysctls, func(x Sysctl) bool { return x.Key == op.Sysctl.Key })
		value := "0"
		if held >= 0 {
			value = s.Sysctls[held].Value
		}
		switch {
		case op.Sysctl.ServedBy(value):
			return nil // as the Linux kernel's shell: no write needed
		case f.SysctlErr != nil:
			return f.SysctlErr
		}
		s.Sysctls = slices.DeleteFunc(s.Sysctls, func(x Sysctl) bool { return x.Key == op.Sysctl.Key })
		s.Sysctls = append(s.Sysctls, *op.Sysctl)
		return nil
	case op.Offload != nil:
		if !hasLink(op.Offload.Dev) {
			return fmt.Errorf("no such device")
		}
		if f.RefuseOffloads[op.Offload.Dev+"/"+op.Offload.Feature] {
			return &OffloadRefusedError{Offload: *op.Offload, Why: "the device does not support changing it (EOPNOTSUPP)"}
		}
		s.Offloads = slices.DeleteFunc(s.Offloads, func(o Offload) bool { return o.Dev == op.Offload.Dev && o.Feature == op.Offload.Feature })
		s.Offloads = append(s.Offloads, *op.Offload)
		return nil
	case op.Chains != nil:
		drop := append(slices.Clone(op.Chains.Delete), chainNames(op.Chains.Set)...)
		s.Chains = slices.DeleteFunc(s.Chains, func(c Chain) bool {
			return c.Family == op.Chains.Family && c.Table == op.Chains.Table && slices.Contains(drop, c.Name)
		})
		s.Chains = append(s.Chains, op.Chains.Set...)
		return nil
	case op.Set != nil:
		return f.applySet(op.Kind, op.Set)
	}
	return fmt.Errorf("empty operation")
}

// applyLink adds, sets or deletes a link, as the kernel does. A set changes
// only the MTU and MAC (a set meant to change anything else leaves a
// difference the tests see), and a new MAC flushes the device's neighbour
// entries. A delete takes the device's addresses, routes and entries with it.
func (f *FakeKernel) applyLink(kind OpKind, l Link) error {
	s := &f.S
	i := slices.IndexFunc(s.Links, func(have Link) bool { return have.Name == l.Name })
	switch {
	case kind == OpAdd && i >= 0:
		return fmt.Errorf("file exists")
	case kind == OpAdd:
		s.Links = append(s.Links, l)
		return nil
	case i < 0:
		return fmt.Errorf("no such device")
	case kind == OpSet:
		if s.Links[i].MAC != l.MAC {
			s.Neighs = slices.DeleteFunc(s.Neighs, func(n Neigh) bool { return n.Dev == l.Name })
		}
		s.Links[i].MTU, s.Links[i].MAC = l.MTU, l.MAC
		return nil
	}
	name := l.Name
	s.Links = slices.Delete(s.Links, i, i+1)
	s.Addrs = slices.DeleteFunc(s.Addrs, func(a Addr) bool { return a.Dev == name })
	s.Routes = slices.DeleteFunc(s.Routes, func(r Route) bool { return r.Dev == name })
	s.FDB = slices.DeleteFunc(s.FDB, func(e FDB) bool { return e.Dev == name })
	s.Neighs = slices.DeleteFunc(s.Neighs, func(n Neigh) bool { return n.Dev == name })
	s.Sysctls = slices.DeleteFunc(s.Sysctls, func(x Sysctl) bool { return x.Dev == name })
	s.Offloads = slices.DeleteFunc(s.Offloads, func(o Offload) bool { return o.Dev == name })
	return nil
}

// applyRoute adds (a destination the agent does not hold), replaces (OpSet)
// or deletes a route; a destination another owner holds is refused as the
// Linux kernel's shell refuses it.
func (f *FakeKernel) applyRoute(kind OpKind, r Route, devExists bool) error {
	s := &f.S
	i := slices.IndexFunc(s.Routes, func(have Route) bool { return have.Dst == r.Dst })
	owner, taken := s.Others.Routes[r.Dst]
	switch {
	case !devExists:
		return fmt.Errorf("no such device")
	case kind != OpDel && taken:
		return &RouteTakenError{Route: r, Owner: owner}
	case kind == OpAdd && i >= 0:
		return fmt.Errorf("file exists")
	case kind == OpAdd:
		s.Routes = append(s.Routes, r)
	case kind == OpSet && i >= 0:
		s.Routes[i] = r
	case kind == OpSet:
		s.Routes = append(s.Routes, r)
	case i < 0 || s.Routes[i] != r:
		return fmt.Errorf("no such process")
	default:
		s.Routes = slices.Delete(s.Routes, i, i+1)
	}
	return nil
}

func fakeSet[T comparable](xs *[]T, x T, kind OpKind, devExists bool) error {
	i := slices.Index(*xs, x)
	switch {
	case !devExists:
		return fmt.Errorf("no such device")
	case kind == OpAdd && i >= 0:
		return fmt.Errorf("file exists")
	case kind == OpAdd:
		*xs = append(*xs, x)
	case i < 0:
		return fmt.Errorf("no such entry")
	default:
		*xs = slices.Delete(*xs, i, i+1)
	}
	return nil
}

func chainNames(cs []Chain) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

func cloneSets(sets []IPSet) []IPSet {
	out := slices.Clone(sets)
	for i := range out {
		out[i].Members = slices.Clone(out[i].Members)
	}
	return out
}

// applySet creates, changes or destroys a set as the kernel does: a set of
// that name must not exist to be created and must exist to change; one
// that a chain's rule matches cannot be destroyed; a member added twice or
// removed when absent is an error.
func (f *FakeKernel) applySet(kind OpKind, c *SetChange) error {
	s := &f.S
	i := slices.IndexFunc(s.Sets, func(x IPSet) bool { return x.Name == c.Set.Name })
	switch {
	case kind == OpAdd && i >= 0:
		return fmt.Errorf("set exists")
	case kind == OpAdd:
		s.Sets = append(s.Sets, cloneSets([]IPSet{c.Set})[0])
		return nil
	case i < 0:
		return fmt.Errorf("no such set")
	case kind == OpDel:
		for _, ch := range s.Chains {
			for _, r := range ch.Rules {
				if strings.Contains(r, "--match-set "+c.Set.Name+" ") {
					return fmt.Errorf("set in use by %s", ch.Key())
				}
			}
		}
		s.Sets = slices.Delete(s.Sets, i, i+1)
		return nil
	}
	set := &s.Sets[i]
	for _, m := range c.Add {
		if slices.Contains(set.Members, m) {
			return fmt.Errorf("member %s exists", m)
		}
		set.Members = append(set.Members, m)
	}
	for _, m := range c.Del {
		j := slices.Index(set.Members, m)
		if j < 0 {
			return fmt.Errorf("no member %s", m)
		}
		set.Members = slices.Delete(set.Members, j, j+1)
	}
	return nil
}
