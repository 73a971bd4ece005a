package nodeagent

import (
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/peering"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestHAStatusEvidence drives tick with a synthetic clock: a fresh agent
// reports its first candidate unanswered until a probe is answered; the
// candidates its probes find down are reported (a change of them alone
// is an event, for the status, without a new route version); when every
// candidate is down the agent keeps the one in use and reports it down,
// so its report is no sign that it is alive.
func TestHAStatusEvidence(t *testing.T) {
	h := NewHA(HAOptions{Port: freePort(t), Interval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond, Failover: FailoverConfig{Down: 3, Up: 2}})
	defer h.closeAll()
	g := peering.Group{Cluster: "gw", Device: "vx-bridge", Candidates: []peering.Candidate{
		{Name: "a", Addr: netip.MustParseAddr("127.0.0.9")}, {Name: "b", Addr: netip.MustParseAddr("127.0.0.8")}}} // nobody answers there
	h.Update([]peering.Group{g}, nil)
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	status := func() (active string, answered bool, down []string) {
		t.Helper()
		st := h.Status()
		if len(st) != 1 || st[0].Answered == nil {
			t.Fatalf("status %+v, want one entry with answered set", st)
		}
		return st[0].Active, *st[0].Answered, st[0].Down
	}
	h.tick(at(0))
	if a, ans, down := status(); a != "a" || ans || down != nil {
		t.Fatalf("fresh agent: active %s answered %v down %v, want a, not answered, none down", a, ans, down)
	}
	h.mu.Lock()
	h.sent[targetKey(g, "a")][0].answered = true
	h.mu.Unlock()
	_, v0 := h.Choice()
	if !h.tick(at(20)) {
		t.Error("the first answer is no event (the status would not be written)")
	}
	if a, ans, _ := status(); a != "a" || !ans {
		t.Errorf("after a's answer: active %s answered %v, want a, answered", a, ans)
	}
	if _, v := h.Choice(); v != v0 {
		t.Errorf("route version moved %d → %d for a status change", v0, v)
	}
	// From now on nothing answers: b (never answered) goes down first,
	// then a; with both down the agent keeps a.
	var events []int
	for ms := 40; ms <= 400; ms += 20 {
		if h.tick(at(ms)) {
			events = append(events, ms)
		}
	}
	a, _, down := status()
	if a != "a" || !slices.Equal(down, []string{"a", "b"}) {
		t.Errorf("all down: active %s down %v, want a kept, down [a b]", a, down)
	}
	if len(events) != 2 {
		t.Errorf("events at %v ms, want two (b down, then a down)", events)
	}
	// Two devices agreeing on the candidate: one entry, down merged,
	// answered only when both answered.
	g6 := peering.Group{Cluster: "gw", Device: "vx-bridge-6", Candidates: g.Candidates}
	h.Update([]peering.Group{g, g6}, nil)
	h.active[groupKey(g6)] = choice{name: "a", since: at(0), answered: true, down: []string{"c"}}
	h.active[groupKey(g)] = choice{name: "a", since: at(0), answered: false, down: []string{"b"}}
	st := h.Status()
	if len(st) != 1 || *st[0].Answered || !slices.Equal(st[0].Down, []string{"b", "c"}) {
		t.Errorf("collapsed status %+v, want one entry, not answered, down [b c]", st)
	}
}

// TestHADeviceGoneOncePerRound: with several candidates over one device,
// the prober asks whether the socket's device is gone once per round, not
// once per candidate.
func TestHADeviceGoneOncePerRound(t *testing.T) {
	asked := 0
	h := NewHA(HAOptions{Port: freePort(t), DeviceGone: func(syscall.Conn) bool { asked++; return false }})
	defer h.closeAll()
	var cands []peering.Candidate
	for i := range 5 {
		cands = append(cands, peering.Candidate{Name: string(rune('a' + i)), Addr: netip.AddrFrom4([4]byte{127, 0, 0, byte(20 + i)})})
	}
	h.Update([]peering.Group{{Cluster: "gw", Device: "vx-bridge", Candidates: cands}}, nil)
	t0 := time.Now()
	h.tick(t0) // opens the socket
	for i := 1; i <= 3; i++ {
		before := asked
		h.tick(t0.Add(time.Duration(i) * 100 * time.Millisecond))
		if n := asked - before; n != 1 {
			t.Errorf("round %d asked DeviceGone %d times for 5 candidates, want 1", i, n)
		}
	}
}

// TestSameChoicesEvidence: a change of what the probes find down, or of
// whether the candidate answered, is a status change to write.
func TestSameChoicesEvidence(t *testing.T) {
	yes, no := true, false
	base := v1alpha1.GatewayChoice{Cluster: "gw", Active: "a", Planned: "a", Answered: &yes}
	for _, c := range []struct {
		name string
		edit func(g *v1alpha1.GatewayChoice)
		same bool
	}{
		{"unchanged", func(g *v1alpha1.GatewayChoice) {}, true},
		{"another bool, same value", func(g *v1alpha1.GatewayChoice) { y := true; g.Answered = &y }, true},
		{"not answered", func(g *v1alpha1.GatewayChoice) { g.Answered = &no }, false},
		{"answered absent", func(g *v1alpha1.GatewayChoice) { g.Answered = nil }, false},
		{"b down", func(g *v1alpha1.GatewayChoice) { g.Down = []string{"b"} }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			other := base
			c.edit(&other)
			if got := sameChoices([]v1alpha1.GatewayChoice{base}, []v1alpha1.GatewayChoice{other}); got != c.same {
				t.Errorf("same %v, want %v", got, c.same)
			}
		})
	}
}
