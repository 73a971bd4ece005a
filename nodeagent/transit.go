package nodeagent

// Transit routing on a gateway candidate (gateway HA, issue 15).
//
// A candidate forwards what its cluster's nodes send it (arriving on its
// path device, vx-local or vx-local-6) out its own cross-cluster devices,
// translated there, never to a sibling candidate: while agents disagree
// for a moment, a sibling would masquerade packets this candidate already
// translated, and the receiver answered them with a reset. The agent holds
// this as a policy rule of its own per path device and family
// (`iif <device> lookup TransitTable`, priority TransitRulePriority; the
// VXLAN packets the transit routes make are the node's own, so WireGuard's
// rule still encrypts those to encrypted peers) and its own table, which holds the
// routes peering.TransitOf derives: the remote ranges as if this node were
// the candidate in use. What the candidate originates itself (its pods, its
// host) keeps following its choice in the main table. A destination the
// table does not hold falls through to the main table. Only rules with the
// agent's protocol at that priority and the agent's routes in that table
// are ever changed; a node that is no candidate (and teardown) holds none.

import (
	"cmp"
	"slices"
	"sync"

	"kosmos.io/kosmos/internal/peering"
)

// The agent's own routing table and rule priority for transit.
const (
	TransitTable        = 4877
	TransitRulePriority = 4877
)

// transitRule is one wanted policy rule: traffic of family fam (4 or 6)
// arriving on dev looks the transit table up.
type transitRule struct {
	fam int
	dev string
}

// transitRules are the rules for t: one per path device and family (the
// table holds only routes of the device's family; the other rule matches
// nothing and costs nothing).
func transitRules(t peering.Transit) []transitRule {
	var out []transitRule
	for _, d := range t.Devices {
		out = append(out, transitRule{4, d}, transitRule{6, d})
	}
	slices.SortFunc(out, func(a, b transitRule) int { return cmp.Or(cmp.Compare(a.dev, b.dev), cmp.Compare(a.fam, b.fam)) })
	return slices.Compact(out)
}

// keyDiff returns the keys of want missing from held, and those of held not
// in want. It is pure.
func keyDiff(want, held []string) (add, del []string) {
	for _, w := range want {
		if !slices.Contains(held, w) {
			add = append(add, w)
		}
	}
	for _, h := range held {
		if !slices.Contains(want, h) {
			del = append(del, h)
		}
	}
	return add, del
}

// TransitRouting holds the transit rule and table of the latest
// composition in the kernel. Want records it (from the source); Settle
// writes it after each pass. Safe for concurrent use.
type TransitRouting struct {
	mu   sync.Mutex
	want peering.Transit
	// held is what the last Settle after a good pass wrote: a pass whose
	// Set failed keeps the main table of the config before it, and the
	// transit table stays with it.
	held peering.Transit
}

// settleTarget is what a Settle writes: the wanted transit after a good
// pass (and it becomes the held one), the held one after a failed pass.
func (t *TransitRouting) settleTarget(passOK bool) peering.Transit {
	t.mu.Lock()
	defer t.mu.Unlock()
	if passOK {
		t.held = t.want
	}
	return t.held
}

// Want records the transit routing to hold from the next Settle on.
func (t *TransitRouting) Want(tr peering.Transit) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.want = tr
}
