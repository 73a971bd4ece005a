package nodeagent

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Design notes: how the agent's chains are written.
//
// Each table's chains of the agent are written in one iptables-restore
// --noflush transaction: declaring a chain (":KOSMOS-X - [0:0]") creates it
// or empties it, its rules follow, the jumps from built-in chains are added
// or moved, chains no longer wanted are removed, and COMMIT makes it all
// visible at once. A packet sees either the old rules or the new ones, never
// an empty chain. Other chains and rules of the table are left as they are
// (--noflush). restoreInput renders the transaction, purely; the golden
// test holds its text.
//
// History: until issue 16 each chain was emptied, then refilled rule by
// rule (one iptables exec each): for that window the NAT chains held no
// mapping and packets crossed untranslated.

// jumpPlace says where the jump from a built-in chain to one of the agent's
// chains goes.
type jumpPlace int

const (
	// jumpNone: the chain is reached from the agent's own chains only.
	jumpNone jumpPlace = iota
	// jumpFirst: inserted as the built-in chain's first rule (and kept
	// ahead of what the chain's misplaced names, where it has one).
	jumpFirst
	// jumpAfterPolicy: behind every rule already there (kube-proxy's and
	// the CNI's policy chains, an admin's rules), except a catch-all
	// REJECT or DROP: right ahead of the first one (jumpSlot).
	jumpAfterPolicy
)

// ownedChain is one of the agent's chains: its table and how it is reached.
type ownedChain struct {
	table, builtin string
	place          jumpPlace
	// misplaced, where set (a jumpFirst chain's), keeps the jump ahead of
	// every rule that would act on the agent's packets before it: it tells
	// whether the rules above the jump in the built-in chain make it
	// misplaced (chainplace.go), and the next pass then moves it back to
	// the top. In POSTROUTING a MASQUERADE, SNAT or NETMAP inserted above
	// it later (a CNI's) does; in the raw table an ACCEPT or a conntrack
	// template. A jump to another chain above it (cali-POSTROUTING,
	// cali-PREROUTING) does not, so the agent and felix do not take turns
	// at the top.
	misplaced func(above []string) bool
}

// ownedChains are the agent's chains, in the order they are declared.
var ownedChains = map[string]ownedChain{
	ChainPrerouting:  {table: "nat", builtin: "PREROUTING", place: jumpFirst},
	ChainPostrouting: {table: "nat", builtin: "POSTROUTING", place: jumpFirst, misplaced: postroutingMisplaced},
	ChainForward:     {table: "filter", builtin: "FORWARD", place: jumpAfterPolicy},
	ChainForwardSrc:  {table: "filter", builtin: "", place: jumpNone},
	ChainForwardDst:  {table: "filter", builtin: "", place: jumpNone},
	ChainInput:       {table: "filter", builtin: "INPUT", place: jumpFirst},
	ChainNoMasq:      {table: "nat", builtin: "", place: jumpNone},
	ChainNoTrackIn:   {table: "raw", builtin: "PREROUTING", place: jumpFirst, misplaced: rawMisplaced},
	ChainNoTrackOut:  {table: "raw", builtin: "OUTPUT", place: jumpFirst, misplaced: rawMisplaced},
}

// catchAll tells whether rule ends its chain for every packet that gets
// there: an unconditional REJECT or DROP (a host firewall's last word).
func catchAll(rule string) bool {
	return rule == "-j DROP" || rule == "-j REJECT" || strings.HasPrefix(rule, "-j REJECT ")
}

// jumpSlot is where a jumpAfterPolicy jump belongs among others (its
// built-in chain's rules without it): the 1-based rule number of the first
// catch-all, so the jump goes right ahead of it; 0 when there is none, and
// the jump goes last. Every other rule (kube-proxy's and the CNI's policy
// chains, an admin's DROP) then judges the packet first.
func jumpSlot(others []string) int {
	for i, r := range others {
		if catchAll(r) {
			return i + 1
		}
	}
	return 0
}

// Markers that Read appends to a chain's rules when its jump needs repair,
// so that the chain differs from the desired one and is rewritten.
const (
	markNoJump    = "(no jump from %s)"
	markMisplaced = "(jump from %s misplaced)"
)

// jumpRepair says what the jump to a chain read as have needs: "" for
// nothing, else markNoJump or markMisplaced.
func jumpRepair(have Chain) string {
	if len(have.Rules) == 0 {
		return ""
	}
	builtin := ownedChains[have.Name].builtin
	switch last := have.Rules[len(have.Rules)-1]; last {
	case fmt.Sprintf(markNoJump, builtin):
		return markNoJump
	case fmt.Sprintf(markMisplaced, builtin):
		return markMisplaced
	}
	return ""
}

// ChainSet is one transaction on one table of one family: the chains
// written whole, the chains removed, and the jumps from built-in chains
// added or removed (a moved jump is both).
type ChainSet struct {
	Family, Table string
	// Set are the chains written whole, with the rules they must hold.
	Set []Chain
	// Delete names the chains removed.
	Delete []string
	// JumpAdd names the chains whose jump is added (at its jumpPlace);
	// JumpDel those whose jump is removed first.
	JumpAdd, JumpDel []string
	// InsertAt is, by chain, the rule number a jumpAfterPolicy jump is
	// inserted at (once its old jump is removed); absent: appended.
	InsertAt map[string]int
}

// Key identifies the family and table.
func (c *ChainSet) Key() string { return c.Family + "/" + c.Table }

func (c *ChainSet) String() string {
	var parts []string
	for _, ch := range c.Set {
		parts = append(parts, fmt.Sprintf("%s (%d rules)", ch.Name, len(ch.Rules)))
	}
	for _, name := range c.Delete {
		parts = append(parts, "delete "+name)
	}
	return fmt.Sprintf("chains %s: %s", c.Key(), strings.Join(parts, ", "))
}

// diffChains groups the chain changes by family and table: one ChainSet
// each. A chain whose rules differ is rewritten; one missing is created and
// its jump added; one whose jump is missing or misplaced is rewritten with
// its jump added (after removing the misplaced one); one no longer wanted is
// removed, with its jump. It returns the sets that write chains (the add
// phase) and those that only remove (the delete phase).
func diffChains(current, desired []Chain) (sets, dels []Op) {
	cur := index(current, Chain.Key)
	want := index(desired, Chain.Key)
	groups := map[string]*ChainSet{}
	group := func(c Chain) *ChainSet {
		k := c.Family + "/" + c.Table
		if groups[k] == nil {
			groups[k] = &ChainSet{Family: c.Family, Table: c.Table}
		}
		return groups[k]
	}
	for _, c := range desired {
		have, ok := cur[c.Key()]
		if ok && equalStrings(have.Rules, c.Rules) {
			continue
		}
		g := group(c)
		g.Set = append(g.Set, c)
		switch repair := jumpRepair(have); {
		case ownedChains[c.Name].place == jumpNone:
		case !ok || repair == markNoJump:
			g.JumpAdd = append(g.JumpAdd, c.Name)
		case repair == markMisplaced:
			g.JumpDel, g.JumpAdd = append(g.JumpDel, c.Name), append(g.JumpAdd, c.Name)
		}
		if ok && have.insertAt > 0 {
			if g.InsertAt == nil {
				g.InsertAt = map[string]int{}
			}
			g.InsertAt[c.Name] = have.insertAt
		}
	}
	for _, c := range current {
		if _, ok := want[c.Key()]; ok {
			continue
		}
		g := group(c)
		g.Delete = append(g.Delete, c.Name)
		if ownedChains[c.Name].place != jumpNone && jumpRepair(c) != markNoJump {
			g.JumpDel = append(g.JumpDel, c.Name)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		g := groups[k]
		if len(g.Set) > 0 {
			sets = append(sets, Op{Kind: OpSet, Chains: g})
		} else {
			dels = append(dels, Op{Kind: OpDel, Chains: g})
		}
	}
	return sets, dels
}

// restoreInput renders a ChainSet as the input of iptables-restore
// --noflush: the chains declared (created or emptied), their rules, the
// jumps removed then added, the removed chains deleted, one COMMIT. It is
// pure.
func restoreInput(c *ChainSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s\n", c.Table)
	set := slices.Clone(c.Set)
	slices.SortFunc(set, func(a, b Chain) int { return cmp.Compare(a.Name, b.Name) })
	for _, ch := range set {
		fmt.Fprintf(&b, ":%s - [0:0]\n", ch.Name)
	}
	for _, name := range c.Delete {
		fmt.Fprintf(&b, ":%s - [0:0]\n", name)
	}
	for _, ch := range set {
		for _, r := range ch.Rules {
			fmt.Fprintf(&b, "-A %s %s\n", ch.Name, r)
		}
	}
	for _, name := range c.JumpDel {
		fmt.Fprintf(&b, "-D %s -j %s\n", ownedChains[name].builtin, name)
	}
	for _, name := range c.JumpAdd {
		switch o := ownedChains[name]; o.place {
		case jumpFirst:
			fmt.Fprintf(&b, "-I %s 1 -j %s\n", o.builtin, name)
		case jumpAfterPolicy:
			if at := c.InsertAt[name]; at > 0 {
				fmt.Fprintf(&b, "-I %s %d -j %s\n", o.builtin, at, name)
			} else {
				fmt.Fprintf(&b, "-A %s -j %s\n", o.builtin, name)
			}
		}
	}
	for _, name := range c.Delete {
		fmt.Fprintf(&b, "-X %s\n", name)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
