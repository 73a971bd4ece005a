package nodeagent

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/peering"
	"kosmos.io/kosmos/internal/testinfra/poll"
)

// TestHAProbes runs the prober and responder over real UDP sockets on
// loopback: the first candidate does not answer, so the choice moves to the
// second; once the first answers and has been up for the hold time, the
// choice moves back.
func TestHAProbes(t *testing.T) {
	ln, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := ln.LocalAddr().(*net.UDPAddr).Port
	ln.Close()
	a, b := netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.2")
	h := NewHA(HAOptions{Port: port, Interval: 20 * time.Millisecond, Failover: FailoverConfig{Down: 3, Up: 2, Hold: 300 * time.Millisecond}})
	groups := []peering.Group{{Cluster: "own", Device: "vx-local", Local: true, Candidates: []peering.Candidate{{Name: "a", Addr: a}, {Name: "b", Addr: b}}}}
	h.Update(groups, []netip.Addr{b}) // only b answers
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	chosen := func(want string) func() bool {
		return func() bool { c, _ := h.Choice(); return c.Local["vx-local"] == want }
	}
	took := poll.Until(t, 5*time.Second, "the choice to move to b", chosen("b"))
	t.Logf("moved to b after %v (3 misses at 20 ms)", took.Round(time.Millisecond))
	select {
	case <-h.Events():
	default:
		t.Error("no event for the change")
	}
	if st := h.Status(); len(st) != 1 || st[0].Cluster != "own" || st[0].Active != "b" {
		t.Errorf("status %+v, want own: b", st)
	}
	h.Update(groups, []netip.Addr{a, b}) // a answers now
	back := poll.Until(t, 5*time.Second, "the choice to move back to a", chosen("a"))
	if back < 300*time.Millisecond {
		t.Errorf("moved back after %v, before the hold", back)
	}
	// A dropped list forgets its choice.
	h.Update(nil, nil)
	if c, _ := h.Choice(); len(c.Local) != 0 || len(h.Status()) != 0 {
		t.Errorf("choice %+v after the list went", c)
	}
}
