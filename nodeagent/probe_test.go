package nodeagent

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
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
	h := NewHA(HAOptions{Port: port, Interval: 20 * time.Millisecond, Timeout: 100 * time.Millisecond, Failover: FailoverConfig{Down: 3, Up: 2, Hold: 300 * time.Millisecond}})
	groups := []peering.Group{{Cluster: "own", Device: "vx-local", Local: true, Candidates: []peering.Candidate{{Name: "a", Addr: a}, {Name: "b", Addr: b}}}}
	h.Update(groups, []netip.Addr{b}) // only b answers
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	chosen := func(want string) func() bool {
		return func() bool { c, _ := h.Choice(); return c.Local["vx-local"] == want }
	}
	took := poll.Until(t, 5*time.Second, "the choice to move to b", chosen("b"))
	t.Logf("moved to b after %v (3 probes timed out after 100 ms, 20 ms apart)", took.Round(time.Millisecond))
	if took < 100*time.Millisecond {
		t.Errorf("moved to b after %v, before any probe's timeout", took)
	}
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

// freePort returns a UDP port free on loopback now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.LocalAddr().(*net.UDPAddr).Port
}

// TestHAMissOnlyAfterTimeout drives tick with a synthetic clock: a probe
// to a candidate that never answers is a miss only once its timeout has
// passed, however many intervals went by, and results fold in send order.
func TestHAMissOnlyAfterTimeout(t *testing.T) {
	port := freePort(t)
	dead := netip.MustParseAddr("127.0.0.9") // nobody answers there
	h := NewHA(HAOptions{Port: port, Interval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond, Failover: FailoverConfig{Down: 3, Up: 2}})
	defer h.closeAll()
	g := peering.Group{Cluster: "gw", Device: "vx-bridge", Candidates: []peering.Candidate{{Name: "a", Addr: dead}, {Name: "b", Addr: netip.MustParseAddr("127.0.0.8")}}}
	h.Update([]peering.Group{g}, nil)
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for ms := 0; ms < 200; ms += 20 {
		h.tick(at(ms))
		if hl := h.health[targetKey(g, "a")]; hl.Misses != 0 || hl.Down {
			t.Fatalf("at %d ms (before the timeout) health %+v, want no miss", ms, hl)
		}
	}
	if n := len(h.sent[targetKey(g, "a")]); n != 10 {
		t.Errorf("%d probes outstanding after 10 intervals, want 10", n)
	}
	// A reply to the second probe (the first still unanswered) waits for
	// the first to settle.
	h.mu.Lock()
	h.sent[targetKey(g, "a")][1].answered = true
	h.mu.Unlock()
	h.tick(at(200)) // the first probe times out, the second was answered
	if hl := h.health[targetKey(g, "a")]; hl.Misses != 0 || hl.Replies != 1 {
		t.Errorf("at 200 ms health %+v, want a miss then a reply folded in order", hl)
	}
	h.tick(at(240)) // the probe sent at 40 ms times out
	h.tick(at(260)) // the one sent at 60 ms
	if hl := h.health[targetKey(g, "a")]; hl.Down || hl.Misses != 2 {
		t.Errorf("at 260 ms health %+v, want 2 misses, up", hl)
	}
	h.tick(at(280)) // the one sent at 80 ms: the third miss in a row
	if hl := h.health[targetKey(g, "a")]; !hl.Down {
		t.Errorf("at 280 ms health %+v, want down after 3 timed-out probes", hl)
	}
}

// slowEcho answers probes on addr:port like a responder, delay late, and
// counts its replies.
func slowEcho(t *testing.T, addr netip.Addr, port int, delay time.Duration) *atomic.Int64 {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(port))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var n atomic.Int64
	go func() {
		for {
			buf := make([]byte, 64)
			m, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			copy(buf, replyMagic)
			time.AfterFunc(delay, func() {
				if _, err := c.WriteToUDPAddrPort(buf[:m], from); err == nil {
					n.Add(1)
				}
			})
		}
	}()
	return &n
}

// TestHASlowLink: a candidate whose replies take longer than the interval
// (several probes in flight) but less than the timeout stays up: the
// choice never leaves it.
func TestHASlowLink(t *testing.T) {
	port := freePort(t)
	slow, fast := netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.2")
	replies := slowEcho(t, slow, port, 70*time.Millisecond)
	h := NewHA(HAOptions{Port: port, Interval: 20 * time.Millisecond, Timeout: time.Second, Failover: FailoverConfig{Down: 3, Up: 2}})
	groups := []peering.Group{{Cluster: "gw", Device: "vx-bridge", Candidates: []peering.Candidate{{Name: "slow", Addr: slow}, {Name: "fast", Addr: fast}}}}
	h.Update(groups, []netip.Addr{fast})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	took := poll.Until(t, 10*time.Second, "40 late replies", func() bool { return replies.Load() >= 40 })
	t.Logf("40 replies 70 ms late (interval 20 ms) in %v", took.Round(time.Millisecond))
	if c, _ := h.Choice(); c.Remote[peering.RemoteKey{Cluster: "gw", Device: "vx-bridge"}] == "fast" {
		t.Errorf("choice %+v: the slow but live candidate was failed away from", c)
	}
	if hl := h.health[targetKey(groups[0], "slow")]; hl.Down {
		t.Errorf("slow candidate down: %+v", hl)
	}
}

// TestHAPassiveAnswers: a passive prober (--probe-interval 0) still
// answers probes, so other nodes do not fail away from it, and sends none.
func TestHAPassiveAnswers(t *testing.T) {
	port := freePort(t)
	a := netip.MustParseAddr("127.0.0.4")
	passive := NewHA(HAOptions{Port: port, Interval: 20 * time.Millisecond, Passive: true})
	passive.Update([]peering.Group{{Cluster: "gw", Device: "vx-bridge", Candidates: []peering.Candidate{{Name: "x", Addr: netip.MustParseAddr("127.0.0.9")}, {Name: "y", Addr: a}}}}, []netip.Addr{a})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go passive.Run(ctx)
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(port))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := append(append([]byte{}, probeMagic...), make([]byte, probeLen-4)...)
	got := make([]byte, 64)
	poll.Until(t, 5*time.Second, "a reply from the passive prober", func() bool {
		_, _ = c.Write(msg)
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := c.Read(got)
		return err == nil && n == probeLen && string(got[:4]) == string(replyMagic)
	})
	passive.mu.Lock()
	defer passive.mu.Unlock()
	if len(passive.sent) != 0 || len(passive.senders) != 0 || len(passive.active) != 0 {
		t.Errorf("passive prober probed: %d outstanding, %d sockets, %d choices", len(passive.sent), len(passive.senders), len(passive.active))
	}
}

// TestHAChoiceDualStack: a remote cluster's IPv4 and IPv6 lists choose on
// their own; the choice and the status say so per device.
func TestHAChoiceDualStack(t *testing.T) {
	h := NewHA(HAOptions{})
	v4 := peering.Group{Cluster: "b", Device: "vx-bridge", Candidates: []peering.Candidate{{Name: "g1", Addr: netip.MustParseAddr("220.0.0.1")}, {Name: "g2", Addr: netip.MustParseAddr("220.0.0.2")}}}
	v6 := peering.Group{Cluster: "b", Device: "vx-bridge-6", Candidates: []peering.Candidate{{Name: "g1", Addr: netip.MustParseAddr("9470::1")}, {Name: "g2", Addr: netip.MustParseAddr("9470::2")}}}
	h.Update([]peering.Group{v4, v6}, nil)
	now := time.Now()
	h.active[groupKey(v4)] = choice{name: "g1", since: now}
	h.active[groupKey(v6)] = choice{name: "g2", since: now}
	c, _ := h.Choice()
	if c.Remote[peering.RemoteKey{Cluster: "b", Device: "vx-bridge"}] != "g1" || c.Remote[peering.RemoteKey{Cluster: "b", Device: "vx-bridge-6"}] != "g2" {
		t.Errorf("choice %+v, want vx-bridge g1, vx-bridge-6 g2", c.Remote)
	}
	st := h.Status()
	if len(st) != 2 || st[0].Device != "vx-bridge" || st[0].Active != "g1" || st[1].Device != "vx-bridge-6" || st[1].Active != "g2" {
		t.Errorf("status %+v, want one entry per device", st)
	}
	h.active[groupKey(v6)] = choice{name: "g1", since: now}
	if st := h.Status(); len(st) != 1 || st[0].Device != "" || st[0].Active != "g1" {
		t.Errorf("status %+v, want one entry for the cluster when the families agree", st)
	}
}

// forger answers probes sent to addr:port with forged replies: from
// another address (wrongSrc), or from addr with another nonce.
func forger(t *testing.T, addr netip.Addr, port int, wrongSrc netip.Addr) *atomic.Int64 {
	t.Helper()
	in, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(port))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	out := in
	if wrongSrc.IsValid() {
		if out, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(wrongSrc, 0))); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { out.Close() })
	}
	var n atomic.Int64
	go func() {
		buf := make([]byte, 64)
		for {
			m, from, err := in.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			copy(buf, replyMagic)
			if !wrongSrc.IsValid() {
				buf[15] ^= 1 // another nonce
			}
			if _, err := out.WriteToUDPAddrPort(buf[:m], from); err == nil {
				n.Add(1)
			}
		}
	}()
	return &n
}

// TestHAForgedReplies: replies from another address than the candidate's,
// or with a nonce no probe carried, do not count: the candidate goes down.
func TestHAForgedReplies(t *testing.T) {
	for _, c := range []struct {
		name     string
		wrongSrc netip.Addr
	}{
		{"reply from another address", netip.MustParseAddr("127.0.0.7")},
		{"reply with another nonce", netip.Addr{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			port := freePort(t)
			cand := netip.MustParseAddr("127.0.0.5")
			forged := forger(t, cand, port, c.wrongSrc)
			h := NewHA(HAOptions{Port: port, Interval: 20 * time.Millisecond, Timeout: 100 * time.Millisecond, Failover: FailoverConfig{Down: 3, Up: 2}})
			g := peering.Group{Cluster: "gw", Device: "vx-bridge", Candidates: []peering.Candidate{{Name: "x", Addr: cand}, {Name: "y", Addr: netip.MustParseAddr("127.0.0.9")}}}
			h.Update([]peering.Group{g}, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go h.Run(ctx)
			poll.Until(t, 5*time.Second, "the forged candidate to go down", func() bool {
				h.mu.Lock()
				defer h.mu.Unlock()
				return h.health[targetKey(g, "x")].Down
			})
			if forged.Load() == 0 {
				t.Error("no forged reply was sent")
			}
		})
	}
}

// TestHASenderReopened: a probing socket whose device is gone is opened
// again (a recreated device has a new index; the old binding never sends).
func TestHASenderReopened(t *testing.T) {
	var gone atomic.Bool
	opened := 0
	h := NewHA(HAOptions{Port: freePort(t),
		Listen: func(network string, laddr *net.UDPAddr) (*net.UDPConn, error) {
			opened++
			return net.ListenUDP(network, laddr)
		},
		DeviceGone: func(syscall.Conn) bool { return gone.Load() },
	})
	defer h.closeAll()
	h.mu.Lock()
	defer h.mu.Unlock()
	first := h.sender("vx-bridge", true)
	if again := h.sender("vx-bridge", true); again != first || opened != 1 {
		t.Fatalf("socket not kept: opened %d", opened)
	}
	gone.Store(true)
	clear(h.live) // the next round asks again
	if again := h.sender("vx-bridge", true); again == first || opened != 2 {
		t.Errorf("socket of a gone device kept: opened %d", opened)
	}
}
