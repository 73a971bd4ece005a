package nodeagent

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRotationStep walks the two-phase rotation as seen by the rotating
// node (A) and by one peer (B), step by step: which peers the rotation
// device holds (and under which key, at port + 1), which routes go through
// it, and when A promotes. A route through the rotation device needs a
// handshake there; a route goes back to the current device only after a
// handshake there newer than the last key change; a peer leaves the
// rotation device only a grace after that.
func TestRotationStep(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	kB, kA, kA2 := [32]byte{1}, [32]byte{2}, [32]byte{3}
	peer := func(key [32]byte, next *[32]byte) *wgConfig {
		p := wgPeer{key: key, name: "x/peer", endpoint: netip.MustParseAddrPort("192.168.0.21:51871"), allowed: []netip.Prefix{netip.MustParsePrefix("192.168.0.21/32")}}
		if next != nil {
			p.next, p.hasNext = *next, true
		}
		return &wgConfig{port: 51871, peers: []wgPeer{p}}
	}
	show := func(out rotOutput) string {
		var hold []string
		for _, p := range out.hold {
			hold = append(hold, fmt.Sprintf("%d@%d", p.key[0], p.endpoint.Port()))
		}
		return fmt.Sprintf("hold=[%s] via=%d promote=%v settle=%d", strings.Join(hold, ","), len(out.viaRotation), out.promote, len(out.settle))
	}
	cases := []struct {
		name string
		in   rotInput
		want string
	}{
		{"no rotation: nothing", rotInput{cfg: peer(kB, nil), peers: map[[32]byte]rotPeer{kB: {current: at(1)}}, now: at(2)},
			"hold=[] via=0 promote=false settle=0"},
		{"A begins: B held under its key, routes stay, no promotion without B's handshake", rotInput{cfg: peer(kB, nil), rotating: true, rotatingSince: at(1),
			peers: map[[32]byte]rotPeer{kB: {current: at(1), held: true}}, now: at(2)},
			"hold=[1@51872] via=0 promote=false settle=0"},
		{"A: B handshook on the rotation device: promote", rotInput{cfg: peer(kB, nil), rotating: true, rotatingSince: at(1),
			peers: map[[32]byte]rotPeer{kB: {current: at(1), rotation: at(2), held: true}}, now: at(3)},
			"hold=[1@51872] via=0 promote=true settle=0"},
		{"A: a peer live on the current device but without the next key: no promotion past the timeout", rotInput{cfg: peer(kB, nil), rotating: true, rotatingSince: at(1),
			peers: map[[32]byte]rotPeer{kB: {current: at(1), held: true}}, now: at(1).Add(wireGuardRotationTimeout)},
			"hold=[1@51872] via=0 promote=false settle=0"},
		{"A: a peer silent on both devices: promote after the timeout", rotInput{cfg: peer(kB, nil), rotating: true, rotatingSince: at(1),
			peers: map[[32]byte]rotPeer{kB: {current: at(1), held: true}}, now: at(1).Add(wireGuardPeerSilent + time.Second)},
			"hold=[1@51872] via=0 promote=true settle=0"},
		{"A promoted: its key changed after the last handshake: via the rotation device", rotInput{cfg: peer(kB, nil), keyChanged: at(3),
			peers: map[[32]byte]rotPeer{kB: {current: at(1), rotation: at(2), held: true}}, now: at(3)},
			"hold=[1@51872] via=1 promote=false settle=0"},
		{"A: handshake on the current device after the change: back, settling", rotInput{cfg: peer(kB, nil), keyChanged: at(3),
			peers: map[[32]byte]rotPeer{kB: {current: at(4), rotation: at(2), held: true}}, now: at(4)},
			"hold=[1@51872] via=0 promote=false settle=1"},
		{"A: within the grace: still held", rotInput{cfg: peer(kB, nil), keyChanged: at(3),
			peers: map[[32]byte]rotPeer{kB: {current: at(4), rotation: at(2), held: true, settled: at(4)}}, now: at(4).Add(wireGuardHandoverGrace / 2)},
			"hold=[1@51872] via=0 promote=false settle=0"},
		{"A: after the grace: the rotation device goes", rotInput{cfg: peer(kB, nil), keyChanged: at(3),
			peers: map[[32]byte]rotPeer{kB: {current: at(4), rotation: at(2), held: true, settled: at(4)}}, now: at(4).Add(wireGuardHandoverGrace)},
			"hold=[] via=0 promote=false settle=0"},
		{"B learns A's next key: A held under it, routes stay", rotInput{cfg: peer(kA, &kA2), peers: map[[32]byte]rotPeer{kA: {current: at(1)}}, now: at(2)},
			"hold=[3@51872] via=0 promote=false settle=0"},
		{"B, A promoted but B's view unchanged: the old session still carries B → A", rotInput{cfg: peer(kA, &kA2),
			peers: map[[32]byte]rotPeer{kA: {current: at(1), rotation: at(2), held: true}}, now: at(4)},
			"hold=[3@51872] via=0 promote=false settle=0"},
		{"B gets A's new key: no handshake with it on the current device: via the rotation device", rotInput{cfg: peer(kA2, nil),
			peers: map[[32]byte]rotPeer{kA2: {rotation: at(2), held: true}}, now: at(5)},
			"hold=[3@51872] via=1 promote=false settle=0"},
		{"B: handshake with A's new key on the current device: back", rotInput{cfg: peer(kA2, nil),
			peers: map[[32]byte]rotPeer{kA2: {current: at(5.1), rotation: at(2), held: true}}, now: at(5.2)},
			"hold=[3@51872] via=0 promote=false settle=1"},
		{"a peer not yet handshaken on the rotation device is never routed there", rotInput{cfg: peer(kA2, nil),
			peers: map[[32]byte]rotPeer{kA2: {held: true}}, now: at(5)},
			"hold=[3@51872] via=0 promote=false settle=0"},
	}
	for _, c := range cases {
		if got := show(rotationStep(c.in)); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// TestRouteVia moves the device route of a routed peer only; blackholes stay.
func TestRouteVia(t *testing.T) {
	cfg := &wgConfig{peers: []wgPeer{
		{key: [32]byte{1}, allowed: []netip.Prefix{netip.MustParsePrefix("192.168.0.21/32")}},
		{key: [32]byte{2}, allowed: []netip.Prefix{netip.MustParsePrefix("192.168.0.31/32")}},
	}}
	got := routeVia(cfg, wireGuardRoutes(cfg, 7), map[[32]byte]bool{{1}: true}, 9)
	var s []string
	for _, r := range got {
		s = append(s, fmt.Sprintf("%s bh=%v dev=%d", r.dst, r.blackhole, r.dev))
	}
	want := []string{"192.168.0.21/32 bh=false dev=9", "192.168.0.21/32 bh=true dev=0", "192.168.0.31/32 bh=false dev=7", "192.168.0.31/32 bh=true dev=0"}
	if !slices.Equal(s, want) {
		t.Errorf("routes %v, want %v", s, want)
	}
}

func TestRotationDeviceName(t *testing.T) {
	for in, want := range map[string]string{"vx-wg": "vx-wg1", "vx-abcdefghijkl": "vx-abcdefghijk1", "vx-abcdefghijk1": "vx-abcdefghijk2"} {
		if got := rotationDevice(in); got != want {
			t.Errorf("rotationDevice(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestRotationStepStaticStability: a rotating node never promotes past a
// peer that is live on the current device (it would cut it off); past the
// timeout it skips only peers silent there for longer than
// wireGuardPeerSilent, and names the ones it waits for. Handshakes on the
// rotation device count only when made after it got its key and after the
// rotation began. A peer no longer rotating that is silent on both devices
// is let go (the rotation device and its ticker do not stay for ever).
func TestRotationStepStaticStability(t *testing.T) {
	t0 := time.Unix(100000, 0)
	since := t0
	late := t0.Add(wireGuardRotationTimeout + time.Second)
	kB, kC := [32]byte{1}, [32]byte{2}
	mk := func(hasNext bool) *wgConfig {
		cfg := &wgConfig{port: 51871}
		for i, k := range [][32]byte{kB, kC} {
			p := wgPeer{key: k, name: []string{"b/b1", "c/c1"}[i], endpoint: netip.MustParseAddrPort(fmt.Sprintf("192.168.0.%d:51871", 21+i)),
				allowed: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("192.168.0.%d/32", 21+i))}}
			if hasNext && i == 0 {
				p.next, p.hasNext = [32]byte{9}, true
			}
			cfg.peers = append(cfg.peers, p)
		}
		return cfg
	}
	show := func(out rotOutput) string {
		return fmt.Sprintf("hold=%d promote=%v timedOut=%v waiting=%v", len(out.hold), out.promote, out.timedOut, out.waiting)
	}
	ago := func(now time.Time, d time.Duration) time.Time { return now.Add(-d) }
	cases := []struct {
		name string
		in   rotInput
		want string
	}{
		{"before the timeout: C without the next key: wait, not reported", rotInput{cfg: mk(false), rotating: true, rotatingSince: since, rotationKeySince: since, now: since.Add(time.Minute),
			peers: map[[32]byte]rotPeer{kB: {current: since, rotation: since.Add(time.Second), held: true}, kC: {current: since, held: true}}},
			"hold=2 promote=false timedOut=[] waiting=[]"},
		{"past the timeout: C live on the current device: wait and report it", rotInput{cfg: mk(false), rotating: true, rotatingSince: since, rotationKeySince: since, now: late,
			peers: map[[32]byte]rotPeer{kB: {current: ago(late, time.Second), rotation: since.Add(time.Second), held: true}, kC: {current: ago(late, 10*time.Second), held: true}}},
			"hold=2 promote=false timedOut=[] waiting=[c/c1]"},
		{"past the timeout: C silent on the current device for 3 min: promote without it", rotInput{cfg: mk(false), rotating: true, rotatingSince: ago(late, 10*time.Minute), rotationKeySince: ago(late, 10*time.Minute), now: late,
			peers: map[[32]byte]rotPeer{kB: {current: ago(late, time.Second), rotation: ago(late, 9*time.Minute), held: true}, kC: {current: ago(late, wireGuardPeerSilent+time.Second), held: true}}},
			"hold=2 promote=true timedOut=[c/c1] waiting=[]"},
		{"a stale handshake on the rotation device (before its key) does not count", rotInput{cfg: mk(false), rotating: true, rotatingSince: since, rotationKeySince: since.Add(time.Second), now: since.Add(time.Minute),
			peers: map[[32]byte]rotPeer{kB: {current: since, rotation: since.Add(time.Second / 2), held: true}, kC: {current: since, rotation: since.Add(2 * time.Second), held: true}}},
			"hold=2 promote=false timedOut=[] waiting=[]"},
		{"a handshake before the rotation began does not count", rotInput{cfg: mk(false), rotating: true, rotatingSince: since, rotationKeySince: ago(since, time.Minute), now: since.Add(time.Minute),
			peers: map[[32]byte]rotPeer{kB: {current: since, rotation: ago(since, time.Second), held: true}, kC: {current: since, rotation: since.Add(2 * time.Second), held: true}}},
			"hold=2 promote=false timedOut=[] waiting=[]"},
		{"fresh handshakes on the rotation device: promote", rotInput{cfg: mk(false), rotating: true, rotatingSince: since, rotationKeySince: since, now: since.Add(time.Minute),
			peers: map[[32]byte]rotPeer{kB: {current: since, rotation: since.Add(time.Second), held: true}, kC: {current: since, rotation: since.Add(2 * time.Second), held: true}}},
			"hold=2 promote=true timedOut=[] waiting=[]"},
		{"not rotating: C dead on both devices for 3 min: let go; B (rotating) kept", rotInput{cfg: mk(true), keyChanged: since, rotationKeySince: since, now: since.Add(wireGuardPeerSilent + time.Second),
			peers: map[[32]byte]rotPeer{kB: {held: true}, kC: {rotation: since, held: true}}},
			"hold=1 promote=false timedOut=[] waiting=[]"},
		{"not rotating: C quiet on both devices for 2.5 min (a live peer may be): kept", rotInput{cfg: mk(true), keyChanged: since, rotationKeySince: since, now: since.Add(150 * time.Second),
			peers: map[[32]byte]rotPeer{kB: {held: true}, kC: {rotation: since, held: true}}},
			"hold=2 promote=false timedOut=[] waiting=[]"},
		{"a shorter timeout set: C live: waited for and reported after it", rotInput{cfg: mk(false), rotating: true, rotatingSince: since, rotationKeySince: since, timeout: 5 * time.Second, now: since.Add(6 * time.Second),
			peers: map[[32]byte]rotPeer{kB: {current: since, rotation: since.Add(time.Second), held: true}, kC: {current: since, held: true}}},
			"hold=2 promote=false timedOut=[] waiting=[c/c1]"},
		{"not rotating: C silent only on the current device: kept", rotInput{cfg: mk(false), keyChanged: since, rotationKeySince: since, now: late,
			peers: map[[32]byte]rotPeer{kC: {rotation: ago(late, time.Second), held: true}}},
			"hold=1 promote=false timedOut=[] waiting=[]"},
	}
	for _, c := range cases {
		if got := show(rotationStep(c.in)); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}
