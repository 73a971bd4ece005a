package nodeagent

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Design notes: why the agent's rules match sets.
//
// The agent's filter rules ask two questions of a packet: is this VXLAN
// packet from one of the peers the config tunnels to (KOSMOS-INPUT), and
// are this forwarded packet's source and destination among the known
// ranges (KOSMOS-FORWARD-SRC, -DST)? Both lists grow with the fleet: in
// P2P every remote node is a peer and brings its pod range. Asked rule by
// rule, as until this change, every packet walked the lists: with 1,800
// more peers (10 clusters of 200 nodes) a tunnelled TCP stream whose
// peer's rule came last ran at 0.31–0.38× the routed path, where it ran at
// 0.73–0.78× with two peers (BenchmarkDataPlane, fleet-rules). Each list is now one
// ipset (a hash the kernel looks up once per packet) and one rule that
// matches it, so a packet's cost no longer depends on the fleet's size.
//
// The sets are the agent's own (KOSMOS-PEER…, KOSMOS-WGPEER…,
// KOSMOS-RANGE…): it reads only those, creates them before the rules that
// match them, changes their members in place (new members are added before
// anything else changes, members gone are removed only after the chains
// are written, so a joining peer, or one moving between sets, is never
// dropped while the rules change), and destroys one only after the last
// rule matching it is gone (the kernel refuses to destroy a set in use;
// with iptables on nf_tables the rule lets go of it a moment later, so a
// refused destroy is tried again for a while).

// Set types the agent uses.
const (
	setHashIP  = "hash:ip"  // addresses: the peers
	setHashNet = "hash:net" // prefixes: the known ranges
)

// setMaxElem is the largest number of members a set may hold (ipset's
// default, 65,536, is below the ranges of 100 clusters of 1,000 nodes).
// Memory is taken as members come, not up front.
const setMaxElem = 1 << 20

// IPSet is one of the agent's ipsets as plain data.
type IPSet struct {
	// Name is KOSMOS-…; Family ipv4 or ipv6; Type hash:ip or hash:net.
	Name, Family, Type string
	// Members are addresses (hash:ip) or prefixes (hash:net) in canonical
	// text, sorted.
	Members []string
}

// SetChange is one write to one of the agent's sets: OpAdd creates it with
// its members, OpDel destroys it, OpSet adds and removes members.
type SetChange struct {
	Set      IPSet
	Add, Del []string
}

func (c SetChange) String() string {
	if len(c.Add) == 0 && len(c.Del) == 0 {
		return fmt.Sprintf("ipset %s (%s %s, %d members)", c.Set.Name, c.Set.Family, c.Set.Type, len(c.Set.Members))
	}
	return fmt.Sprintf("ipset %s (+%d −%d members)", c.Set.Name, len(c.Add), len(c.Del))
}

// setKinds begin the names of the agent's sets; Read sees no other.
var setKinds = []string{"KOSMOS-PEER", "KOSMOS-WGPEER", "KOSMOS-RANGE"}

// ownSet tells whether a set of that name is the agent's.
func ownSet(name string) bool {
	for _, k := range setKinds {
		if strings.HasPrefix(name, k) {
			return true
		}
	}
	return false
}

// Names of the agent's sets.
func peerSetName(fam string, port int32, tunnelled bool) string {
	kind := "PEER"
	if tunnelled {
		kind = "WGPEER" // reached through the WireGuard device only
	}
	return fmt.Sprintf("KOSMOS-%s%s-%d", kind, famDigit(fam), port)
}

func rangeSetName(fam string) string { return "KOSMOS-RANGE" + famDigit(fam) }

func famDigit(fam string) string {
	if fam == "ipv6" {
		return "6"
	}
	return "4"
}

// setMembers turns prefixes into a hash:net set's members: canonical text,
// sorted, without duplicates. A /0, which hash:net cannot hold, is held as
// its two halves.
func setMembers(prefixes []netip.Prefix) []string {
	var out []string
	for _, p := range prefixes {
		p = p.Masked()
		if p.Bits() == 0 {
			lo := p.Addr()
			hiBytes := lo.AsSlice()
			hiBytes[0] = 0x80
			hi, _ := netip.AddrFromSlice(hiBytes)
			out = append(out, netip.PrefixFrom(lo, 1).String(), netip.PrefixFrom(hi, 1).String())
			continue
		}
		out = append(out, p.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sortSets sorts sets by name and each set's members.
func sortSets(sets []IPSet) {
	for i := range sets {
		slices.Sort(sets[i].Members)
	}
	slices.SortFunc(sets, func(a, b IPSet) int { return cmp.Compare(a.Name, b.Name) })
}

// writeSets prints sets as State.String does: a line per set, its members
// on it.
func writeSets(b *strings.Builder, sets []IPSet) {
	for _, s := range sets {
		fmt.Fprintf(b, "ipset %s %s %s: %s\n", s.Name, s.Family, s.Type, strings.Join(s.Members, " "))
	}
}

// diffSets returns the set writes of the add phase (new sets, filled; new
// members of held sets), the member removals, which run once the chains
// are written (a peer moving from one set to another, clear to encrypted
// say, is never in neither while the rules change), and the destructions,
// which run after the chains that match them are gone. A held set of
// another family or type than wanted is destroyed and created again (the
// kernel cannot change either in place; only a set someone else made under
// the agent's name can differ so, and while a rule matches it the kernel
// refuses, which the pass reports).
func diffSets(current, desired []IPSet) (adds, removals, dels []Op) {
	cur := index(current, func(s IPSet) string { return s.Name })
	for _, d := range desired {
		c, ok := cur[d.Name]
		switch {
		case !ok:
			adds = append(adds, Op{Kind: OpAdd, Set: &SetChange{Set: d}})
		case c.Family != d.Family || c.Type != d.Type:
			reason := fmt.Sprintf("%s %s → %s %s", c.Family, c.Type, d.Family, d.Type)
			adds = append(adds, Op{Kind: OpDel, Set: &SetChange{Set: c}, Reason: reason}, Op{Kind: OpAdd, Set: &SetChange{Set: d}, Reason: reason})
		default:
			have := make(map[string]bool, len(c.Members))
			for _, m := range c.Members {
				have[m] = true
			}
			want := make(map[string]bool, len(d.Members))
			var add, del []string
			for _, m := range d.Members {
				want[m] = true
				if !have[m] {
					add = append(add, m)
				}
			}
			for _, m := range c.Members {
				if !want[m] {
					del = append(del, m)
				}
			}
			if len(add) > 0 {
				adds = append(adds, Op{Kind: OpSet, Set: &SetChange{Set: d, Add: add}})
			}
			if len(del) > 0 {
				removals = append(removals, Op{Kind: OpSet, Set: &SetChange{Set: d, Del: del}})
			}
		}
	}
	want := index(desired, func(s IPSet) string { return s.Name })
	for _, c := range current {
		if _, ok := want[c.Name]; !ok {
			dels = append(dels, Op{Kind: OpDel, Set: &SetChange{Set: c}})
		}
	}
	return adds, removals, dels
}
