package nodeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
		{"a new destination waits for the full pass", RouteView{Devices: devs}, []Route{g2}, nil},
		{"a destination no longer wanted waits for the full pass", RouteView{Devices: devs, Routes: []Route{g1, other}}, []Route{g2},
			[]string{"set route 10.20.0.0/16 via 220.0.0.22 dev vx-bridge"}},
		{"a destination the agent does not route (another owner's, say) is never written", RouteView{Devices: devs, Routes: []Route{g1}},
			[]Route{taken, g2}, []string{"set route 10.20.0.0/16 via 220.0.0.22 dev vx-bridge"}},
		{"a route on a missing device waits, its old route stays", RouteView{Devices: devs, Routes: []Route{g1}}, []Route{onNew}, nil},
		{"no device, no route", RouteView{}, []Route{g2}, nil},
		{"a next hop without neighbour entries in the held config waits", RouteView{Devices: devs, Routes: []Route{g1}},
			[]Route{{Dst: "10.20.0.0/16", Via: "220.0.0.99", Dev: "vx-bridge"}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			known := map[string]bool{hopKey("vx-bridge", "220.0.0.21"): true, hopKey("vx-bridge", "220.0.0.22"): true, hopKey("vx-new", "220.0.0.22"): true}
			for _, op := range MoveOps(c.have, c.want, known) {
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
	spec := moveSpec
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

// TestWithMove: after the fast path, a refused config leaves the last good
// one with the moved next hops of the destinations it already routes, and
// nothing else of the new one.
func TestWithMove(t *testing.T) {
	spec := func(routes ...v1alpha1.Route) *v1alpha1.NodeConfigSpec {
		return &v1alpha1.NodeConfigSpec{
			Devices: []v1alpha1.Device{{Name: "vx-bridge", VNI: 54, Port: 4876, MAC: "02:00:00:00:00:01", UnderlayIP: "192.168.0.1", NIC: "auto", Addresses: []string{"220.0.0.1/8"}}},
			Routes:  routes,
			Neighbors: []v1alpha1.Neighbor{{IP: "220.0.0.21", MAC: "02:00:00:00:00:21", Device: "vx-bridge"},
				{IP: "220.0.0.22", MAC: "02:00:00:00:00:22", Device: "vx-bridge"}},
		}
	}
	r := func(dst, via string) v1alpha1.Route { return v1alpha1.Route{Dst: dst, Via: via, Device: "vx-bridge"} }
	for _, c := range []struct {
		name       string
		last, spec *v1alpha1.NodeConfigSpec
		want       []v1alpha1.Route
	}{
		{"the move holds", spec(r("10.20.0.0/16", "220.0.0.21")), spec(r("10.20.0.0/16", "220.0.0.22")), []v1alpha1.Route{r("10.20.0.0/16", "220.0.0.22")}},
		{"a new destination of the refused config stays out", spec(r("10.20.0.0/16", "220.0.0.21")),
			spec(r("10.20.0.0/16", "220.0.0.22"), r("192.168.0.0/16", "220.0.0.9")), []v1alpha1.Route{r("10.20.0.0/16", "220.0.0.22")}},
		{"a destination the refused config drops stays", spec(r("10.20.0.0/16", "220.0.0.21"), r("10.30.0.0/16", "220.0.0.31")),
			spec(r("10.20.0.0/16", "220.0.0.22")), []v1alpha1.Route{r("10.20.0.0/16", "220.0.0.22"), r("10.30.0.0/16", "220.0.0.31")}},
		{"a next hop that does not validate is no move", spec(r("10.20.0.0/16", "220.0.0.21")), spec(r("10.20.0.0/16", "not-an-address")), []v1alpha1.Route{r("10.20.0.0/16", "220.0.0.21")}},
		{"a next hop new to the plan (no entries in the held config) is no move", spec(r("10.20.0.0/16", "220.0.0.21")), spec(r("10.20.0.0/16", "220.0.0.99")), []v1alpha1.Route{r("10.20.0.0/16", "220.0.0.21")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := c.last.DeepCopy()
			got := withMove(c.last, c.spec)
			if !slices.Equal(got.Routes, c.want) {
				t.Errorf("routes %v, want %v", got.Routes, c.want)
			}
			if !slices.Equal(c.last.Routes, before.Routes) {
				t.Errorf("withMove changed last: %v", c.last.Routes)
			}
		})
	}
	if withMove(nil, spec()) != nil {
		t.Error("withMove(nil) is not nil")
	}
}

// failOnceKernel is a FakeKernel whose full Read fails once when armed (an
// iptables-save that failed under load): that pass is refused whole.
type failOnceKernel struct {
	FakeKernel
	armed bool
}

func (f *failOnceKernel) Read() (State, error) {
	if f.armed {
		f.armed = false
		return State{}, errors.New("iptables-save: resource temporarily unavailable")
	}
	return f.FakeKernel.Read()
}

// TestRunRefusedPassKeepsTheMove: a move whose full pass is refused whole
// (the kernel could not be read) keeps the moved route, then and on the
// passes after; without withMove the refusal put it back on the candidate
// that failed.
func TestRunRefusedPassKeepsTheMove(t *testing.T) {
	spec := moveSpec
	k := &failOnceKernel{}
	via := func() string {
		if len(k.S.Routes) != 1 {
			return fmt.Sprint(k.S.Routes)
		}
		return k.S.Routes[0].Via
	}
	current := spec("220.0.0.21")
	var version uint64
	passes := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	Run(ctx, k, func() (*v1alpha1.NodeConfigSpec, error) { return current.DeepCopy(), nil }, Options{
		Resync: time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Moves: func() (uint64, time.Time) { return version, time.Time{} },
		Report: func(*v1alpha1.NodeConfigSpec, Result, error) {
			passes++
			switch passes {
			case 1:
				if via() != "220.0.0.21" {
					t.Errorf("first pass: route via %s", via())
				}
				current, version, k.armed = spec("220.0.0.22"), 1, true // the move, and a read that fails
			case 2, 3:
				if via() != "220.0.0.22" {
					t.Errorf("pass %d after the move (the first refused): route via %s, want 220.0.0.22", passes, via())
				}
			default:
				cancel()
			}
		},
	})
}

// moveSpec is the runs' config: one route to 10.20.0.0/16 via a
// candidate, with entries for both candidates (hot standbys).
func moveSpec(via string) *v1alpha1.NodeConfigSpec {
	return &v1alpha1.NodeConfigSpec{
		Devices: []v1alpha1.Device{{Name: "vx-bridge", VNI: 54, Port: 4876, MAC: "02:00:00:00:00:01", UnderlayIP: "192.168.0.1", NIC: "auto", Addresses: []string{"220.0.0.1/8"}}},
		Routes:  []v1alpha1.Route{{Dst: "10.20.0.0/16", Via: via, Device: "vx-bridge"}},
		Neighbors: []v1alpha1.Neighbor{{IP: "220.0.0.21", MAC: "02:00:00:00:00:21", Device: "vx-bridge"},
			{IP: "220.0.0.22", MAC: "02:00:00:00:00:22", Device: "vx-bridge"}},
	}
}
