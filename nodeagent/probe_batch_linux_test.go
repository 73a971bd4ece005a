package nodeagent

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"kosmos.io/kosmos/internal/peering"
	"kosmos.io/kosmos/internal/testinfra/poll"
)

// TestProbeRoundBatched probes 300 candidates (more than a batch, so
// sends and reads go in several batches) on 3 loopback addresses that a
// real responder answers: every candidate's probe is answered by the
// next round; the probing socket has no reader goroutine (the round reads
// the replies) and a receive buffer that holds two rounds of replies.
func TestProbeRoundBatched(t *testing.T) {
	port := freePort(t)
	addrs := []netip.Addr{netip.MustParseAddr("127.0.4.1"), netip.MustParseAddr("127.0.4.2"), netip.MustParseAddr("127.0.4.3")}
	resp := NewHA(HAOptions{Port: port, Passive: true})
	resp.Update(nil, addrs)
	resp.tick(time.Now()) // binds the responders
	defer resp.closeAll()
	var cands []peering.Candidate
	for i := range 300 {
		cands = append(cands, peering.Candidate{Name: fmt.Sprintf("g%03d", i), Addr: addrs[i%len(addrs)]})
	}
	g := peering.Group{Cluster: "gw", Device: "vx-bridge", Candidates: cands}
	h := NewHA(HAOptions{Port: port, Interval: 100 * time.Millisecond, Timeout: time.Hour, Failover: FailoverConfig{Down: 3, Up: 2}})
	defer h.closeAll()
	h.Update([]peering.Group{g}, nil)
	t0 := time.Now()
	before := runtime.NumGoroutine()
	h.tick(t0) // opens the probing socket, sends round 1
	if after := runtime.NumGoroutine(); after != before {
		t.Errorf("%d goroutines after the probing socket opened, %d before: want no reader", after, before)
	}
	round := 0
	answered := func() int {
		n := 0
		for _, c := range cands {
			if h.health[targetKey(g, c.Name)].Replies > 0 {
				n++
			}
		}
		return n
	}
	took := poll.Until(t, 10*time.Second, "every candidate answered", func() bool {
		round++
		h.tick(t0.Add(time.Duration(round) * 100 * time.Millisecond))
		return answered() == len(cands)
	})
	t.Logf("300 candidates answered after %d rounds (%v)", round, took.Round(time.Millisecond))
	for _, c := range cands {
		if hl := h.health[targetKey(g, c.Name)]; hl.Misses != 0 || hl.Down {
			t.Errorf("%s: health %+v, want no miss", c.Name, hl)
		}
	}
	s := h.senders[senderKey{"vx-bridge", true}]
	if s == nil {
		t.Fatal("no probing socket")
	}
	rc, _ := s.io.SyscallConn()
	var got int
	var gerr error
	_ = rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
	// The kernel reports twice the size set (its bookkeeping share).
	if want := probeRcvBuf(300, h.opts.Timeout, h.opts.Interval); gerr != nil || got < 2*want {
		t.Errorf("receive buffer %d (%v), want at least 2 × %d", got, gerr, want)
	}
}

// TestProbeIOStamps: a detached probing socket reads a queued datagram
// without waiting, with its source and the kernel's receive time, and
// reads nothing (no wait, no error) when none is queued.
func TestProbeIOStamps(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	to := c.LocalAddr().(*net.UDPAddr).AddrPort()
	b, err := newProbeIO(c, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if n, err := b.recv(false); n != 0 || err != nil {
		t.Fatalf("recv on an empty socket: %d, %v; want 0, nil", n, err)
	}
	out, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	sent := time.Now()
	if _, err := out.WriteToUDPAddrPort([]byte("KSP!0123abcdefgh"), to); err != nil {
		t.Fatal(err)
	}
	var n int
	poll.Until(t, 5*time.Second, "the datagram queued", func() bool { n, err = b.recv(false); return n > 0 || err != nil })
	if err != nil || n != 1 {
		t.Fatalf("recv: %d, %v; want 1", n, err)
	}
	p, from, at := b.packet(0)
	if string(p) != "KSP!0123abcdefgh" || from != out.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Errorf("read %q from %v, want the datagram from %v", p, from, out.LocalAddr())
	}
	if at.Before(sent.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("receive time %v, want about %v", at, sent)
	}
}

// TestSockaddr: addresses to and from the kernel's socket addresses, for
// sockets of either family.
func TestSockaddr(t *testing.T) {
	for _, c := range []struct {
		name string
		to   string
		v4   bool
		ok   bool
		back string // what the kernel form reads back as
	}{
		{"IPv4", "192.0.2.1:4801", true, true, "192.0.2.1:4801"},
		{"IPv4-mapped to an IPv4 socket", "[::ffff:192.0.2.1]:4801", true, true, "192.0.2.1:4801"},
		{"IPv6 to an IPv4 socket", "[2001:db8::1]:4801", true, false, ""},
		{"IPv6", "[2001:db8::1]:4801", false, true, "[2001:db8::1]:4801"},
		{"IPv6 with a numeric zone", "[fe80::1%7]:65535", false, true, "[fe80::1%7]:65535"},
		{"IPv6 with an unknown device zone", "[fe80::1%kosmos-nonesuch]:1", false, false, ""},
		{"IPv4 to an IPv6 socket", "192.0.2.1:1", false, true, "[::ffff:192.0.2.1]:1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sa unix.RawSockaddrInet6
			n, ok := putSockaddr(&sa, netip.MustParseAddrPort(c.to), c.v4)
			if ok != c.ok {
				t.Fatalf("putSockaddr ok = %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			if got := sockaddrAddrPort(&sa, n).String(); got != c.back {
				t.Errorf("read back %s, want %s", got, c.back)
			}
		})
	}
	if got := sockaddrAddrPort(&unix.RawSockaddrInet6{Family: unix.AF_UNIX}, unix.SizeofSockaddrInet6); got.IsValid() {
		t.Errorf("a unix socket address read as %v", got)
	}
	if got := sockaddrAddrPort(&unix.RawSockaddrInet6{Family: unix.AF_INET6}, 4); got.IsValid() {
		t.Errorf("a short IPv6 socket address read as %v", got)
	}
}
