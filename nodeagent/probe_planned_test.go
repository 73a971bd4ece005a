package nodeagent

import (
	"net/netip"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/peering"
)

// TestHAStatusPlanned: the status names, with the candidate in use, the
// one the config puts first, so the reconciler tells a probe-driven move
// from an agent that has not read a new plan yet; families that agree on
// both collapse into one entry, and a change of the planned one alone is
// a status change.
func TestHAStatusPlanned(t *testing.T) {
	h := NewHA(HAOptions{})
	cands := func(names ...string) []peering.Candidate {
		var out []peering.Candidate
		for i, n := range names {
			out = append(out, peering.Candidate{Name: n, Addr: netip.AddrFrom4([4]byte{220, 0, 0, byte(i + 1)})})
		}
		return out
	}
	v4 := peering.Group{Cluster: "b", Device: "vx-bridge", Candidates: cands("g1", "g2")}
	h.Update([]peering.Group{v4}, nil)
	now := time.Now()
	h.active[groupKey(v4)] = choice{name: "g2", since: now}
	st := h.Status()
	if len(st) != 1 || st[0].Active != "g2" || st[0].Planned != "g1" {
		t.Fatalf("status %+v, want active g2, planned g1", st)
	}
	// The plan moves to g2: same candidate in use, another planned one.
	v4.Candidates = cands("g2", "g1")
	h.Update([]peering.Group{v4}, nil)
	next := h.Status()
	if len(next) != 1 || next[0].Active != "g2" || next[0].Planned != "g2" {
		t.Fatalf("status %+v, want active g2, planned g2", next)
	}
	if sameChoices(st, next) {
		t.Errorf("a new planned candidate alone is no status change: %+v, %+v", st, next)
	}
	// Two families agreeing on both: one entry; disagreeing on the planned one: one per device.
	v6 := peering.Group{Cluster: "b", Device: "vx-bridge-6", Candidates: cands("g2", "g1")}
	h.Update([]peering.Group{v4, v6}, nil)
	h.active[groupKey(v6)] = choice{name: "g2", since: now}
	if st := h.Status(); len(st) != 1 || st[0].Device != "" || st[0].Planned != "g2" {
		t.Errorf("status %+v, want one entry planned g2", st)
	}
	v6.Candidates = cands("g1", "g2")
	h.Update([]peering.Group{v4, v6}, nil)
	if st := h.Status(); len(st) != 2 || st[0].Planned != "g2" || st[1].Planned != "g1" {
		t.Errorf("status %+v, want one entry per device", st)
	}
}
