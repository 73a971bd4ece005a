package nodeagent

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestMoveOps: which route writes the fast path of a gateway move takes.
func TestMoveOps(t *testing.T) {
	g1 := Route{Dst: "10.20.0.0/16", Via: "220.0.0.21", Dev: "vx-bridge"}
	g2 := Route{Dst: "10.20.0.0/16", Via: "220.0.0.22", Dev: "vx-bridge"}
	other := Route{Dst: "10.30.0.0/16", Via: "220.0.0.31", Dev: "vx-bridge"}
	onNew := Route{Dst: "10.20.0.0/16", Via: "220.0.0.22", Dev: "vx-new"}
	taken := Route{Dst: "10.40.0.0/16", Via: "220.0.0.41", Dev: "vx-bridge"}
	devs := []string{"vx-bridge"}
	for _, c := range []struct {
		name string
		have RouteView
		want []Route
		ops  []string
	}{
		{"a move replaces the next hop", RouteView{Devices: devs, Routes: []Route{g1}}, []Route{g2},
			[]string{"set route 10.20.0.0/16 via 220.0.0.22 dev vx-bridge"}},
		{"nothing to do", RouteView{Devices: devs, Routes: []Route{g1}}, []Route{g1}, nil},
		{"a new destination is added", RouteView{Devices: devs}, []Route{g2},
			[]string{"add route 10.20.0.0/16 via 220.0.0.22 dev vx-bridge"}},
		{"a destination no longer wanted is deleted, after the writes", RouteView{Devices: devs, Routes: []Route{g1, other}}, []Route{g2},
			[]string{"set route 10.20.0.0/16 via 220.0.0.22 dev vx-bridge", "del route 10.30.0.0/16 via 220.0.0.31 dev vx-bridge"}},
		{"another owner's destination is never written", RouteView{Devices: devs, Others: map[string]string{taken.Dst: "proto static dev eth0"}},
			[]Route{taken, g2}, []string{"add route 10.20.0.0/16 via 220.0.0.22 dev vx-bridge"}},
		{"a destination the agent holds too is still its own", RouteView{Devices: devs, Routes: []Route{g1}, Others: map[string]string{g1.Dst: "proto static dev eth0"}},
			[]Route{g2}, []string{"set route 10.20.0.0/16 via 220.0.0.22 dev vx-bridge"}},
		{"a route on a missing device waits, its old route stays", RouteView{Devices: devs, Routes: []Route{g1}}, []Route{onNew}, nil},
		{"no device, no route", RouteView{}, []Route{g2}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, op := range MoveOps(c.have, c.want) {
				got = append(got, op.String())
				if op.Route == nil {
					t.Errorf("not a route op: %s", op)
				}
			}
			if !slices.Equal(got, c.ops) {
				t.Errorf("ops\n got %q\nwant %q", got, c.ops)
			}
		})
	}
}

// slowKernel is a FakeKernel whose full Read blocks while blocking is set
// (a loaded node, where the full read is what takes the time), safe for
// the test to look at while Run works.
type slowKernel struct {
	mu         sync.Mutex
	f          FakeKernel
	blocking   atomic.Bool
	release    chan struct{}
	reads      atomic.Int32
	routeReads atomic.Int32
}

func (s *slowKernel) Read() (State, error) {
	s.reads.Add(1)
	if s.blocking.Load() {
		<-s.release
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Read()
}

func (s *slowKernel) ReadRoutes() (RouteView, error) {
	s.routeReads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.ReadRoutes()
}

func (s *slowKernel) Apply(op Op) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Apply(op)
}

func (s *slowKernel) Resolve(l *Link) error { return s.f.Resolve(l) }

func (s *slowKernel) routes() []Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.f.S.Routes)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunMoveWritesRoutesFirst: when the gateway choice changes, the new
// routes reach the kernel while the full pass is still reading (here its
// Read blocks); a pass without a move reads no routes alone. Without the
// fast path the route stays on the old candidate until the full Read
// returns.
func TestRunMoveWritesRoutesFirst(t *testing.T) {
	spec := func(via string) *v1alpha1.NodeConfigSpec {
		return &v1alpha1.NodeConfigSpec{
			Devices: []v1alpha1.Device{{Name: "vx-bridge", VNI: 54, Port: 4876, MAC: "02:00:00:00:00:01", UnderlayIP: "192.168.0.1", NIC: "auto", Addresses: []string{"220.0.0.1/8"}}},
			Routes:  []v1alpha1.Route{{Dst: "10.20.0.0/16", Via: via, Device: "vx-bridge"}},
		}
	}
	var current atomic.Pointer[v1alpha1.NodeConfigSpec]
	current.Store(spec("220.0.0.21"))
	var version atomic.Uint64
	var decided atomic.Int64
	k := &slowKernel{release: make(chan struct{})}
	changes := make(chan struct{}, 1)
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, k, func() (*v1alpha1.NodeConfigSpec, error) { return current.Load().DeepCopy(), nil }, Options{
			Resync: time.Hour, Changes: changes, Log: slog.New(slog.NewTextHandler(logs, nil)),
			Moves: func() (uint64, time.Time) { return version.Load(), time.Unix(0, decided.Load()) },
		})
	}()
	defer func() {
		if k.blocking.Load() {
			close(k.release)
		}
		cancel()
		<-done
	}()
	via := func(addr string) func() bool {
		return func() bool {
			rs := k.routes()
			return len(rs) == 1 && rs[0].Via == addr
		}
	}
	poll.Until(t, 10*time.Second, "the first pass's route", via("220.0.0.21"))
	// A pass without a move: the full pass only.
	changes <- struct{}{}
	poll.Until(t, 10*time.Second, "a second pass", func() bool { return k.reads.Load() >= 2 })
	if n := k.routeReads.Load(); n != 0 {
		t.Errorf("a pass without a move read the routes alone %d times", n)
	}
	// A move, with the full read stuck.
	k.blocking.Store(true)
	current.Store(spec("220.0.0.22"))
	decided.Store(time.Now().UnixNano())
	version.Store(1)
	changes <- struct{}{}
	took := poll.Until(t, 5*time.Second, "the move's route written while the full read is stuck", via("220.0.0.22"))
	t.Logf("route moved %v after the signal", took)
	if n := k.routeReads.Load(); n != 1 {
		t.Errorf("the move read the routes alone %d times, want 1", n)
	}
	poll.Until(t, 5*time.Second, "the \"routes written\" log line with the time after the decision", func() bool {
		return strings.Contains(logs.String(), "gateway failover: routes written") && strings.Contains(logs.String(), "afterDecision=")
	})
}
