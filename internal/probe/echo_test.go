package probe

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestEchoLoopback: the server answers the client's TCP and UDP probes and
// the loopback its ICMP echo; a port nobody serves fails, in time.
func TestEchoLoopback(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s, err := Listen(port)
	if err != nil {
		t.Fatal(err)
	}
	s.Serve()
	defer s.Close()
	lo := netip.MustParseAddr("127.0.0.1")
	answers := Client(context.Background(), []Target{{TCP, lo}, {UDP, lo}, {ICMP, lo}}, port, 3*time.Second)
	for _, a := range answers {
		if a.Err != "" || a.Skip != "" {
			t.Errorf("%s: %+v", a.Target, a)
		}
	}
	start := time.Now()
	answers = Client(context.Background(), []Target{{TCP, lo}, {UDP, lo}}, port+1, 500*time.Millisecond)
	for _, a := range answers {
		if a.Err == "" {
			t.Errorf("%s answered on a port nobody serves", a.Target)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("failing probes took %s, want about their 500 ms", d)
	}
	t.Logf("failing probes: %v in %s", answers, time.Since(start).Round(time.Millisecond))
}
