package nodeagent

// Lossless WireGuard key rotation.
//
// WireGuard names a peer by its public key, and on one device a peer's
// allowed IPs (here: its underlay /32 or /128) belong to one peer only. So
// no single device can talk to a node under its old and its new key at
// once, and a one-phase rotation (the node swaps its key, peers follow one
// reconcile round-trip later) stalls the tunnel for that round-trip. The
// handover therefore goes through a second device, the rotation device
// (the WireGuard device's name with a 1, vx-wg1, on the device's port + 1),
// which exists only while a rotation is under way:
//
//  1. `kosmos agent --rotate-wireguard-key` writes the next key
//     (wireguard.next.key, 0600) beside the current one. The agent takes it
//     up, publishes it (status.wireGuard.nextPublicKey) and keeps using the
//     current key. It brings up its rotation device with the next key,
//     holding every peer.
//  2. The reconciler carries the next key to the peers (ClusterPeers
//     endpoints[].wireGuard.nextPublicKey). Each peer brings up its own
//     rotation device (its own key, port + 1) holding the rotating node
//     under its next key. The two rotation devices handshake: a second,
//     parallel tunnel exists, unused.
//  3. Once the rotating node sees a handshake on its rotation device with
//     every peer (data-plane proof that each peer holds its next key; only
//     handshakes after the rotation device got its key count; after
//     wireGuardRotationTimeout it skips a peer silent on the current device
//     too, for wireGuardPeerSilent: never a live one, which it waits for and
//     reports), it
//     promotes: its routes to the peers move to the rotation device (one
//     route replace each), then the current device gets the next key and
//     the key file is replaced. The peers keep sending through their
//     current device for now: WireGuard invalidates only the sending half
//     of the old sessions, so the rotating node still decrypts them.
//  4. The reconciler carries the new public key. A peer moves its route to
//     the rotating node onto its rotation device first, then swaps the
//     node's key on its current device; the current devices handshake with
//     the new key, and each side moves its route back (a handshake on the
//     current device newer than the last key change proves the other side
//     holds the new key). A rotation device's peer goes
//     wireGuardHandoverGrace after that handshake (the other side, which
//     saw the same handshake, has moved back by then), and the device with
//     its last peer.
//
// Every step adds before it removes; routes move by replacing one route
// with another; while the rotation device exists the agent re-checks
// handshakes every wireGuardRotationTick, so that a move does not wait for
// a pass. Nothing is ever sent in clear: the blackholes stay behind both
// devices' routes. The decision is rotationStep, a pure function; the
// effects are in wireguard_rotate_linux.go.

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	// WireGuardNextKeyFile is the key being rotated to, in the state
	// directory.
	WireGuardNextKeyFile = "wireguard.next.key"
	// wireGuardRotationTick is how often handshakes are re-checked while a
	// rotation device exists.
	wireGuardRotationTick = 100 * time.Millisecond
	// wireGuardHandoverGrace is how long a peer stays on the rotation
	// device after the current device handshook with it again.
	wireGuardHandoverGrace = 3 * time.Second
	// wireGuardRotationTimeout is how long a rotating node waits for every
	// peer's handshake on the rotation device before it promotes without
	// the peers that are silent on the current device too.
	wireGuardRotationTimeout = 2 * time.Minute
	// wireGuardPeerSilent is how long without a handshake on a device a
	// peer is taken for dead there. A live peer handshakes at least every
	// two minutes (the persistent keepalive keeps its session in use, and
	// WireGuard renews a session in use after 120 s and refuses one older
	// than 180 s), so three minutes of silence is the data plane's own
	// proof that it is gone.
	wireGuardPeerSilent = 3 * time.Minute
)

// metricWireGuardRotationWaiting counts the peers holding a rotation's
// promotion back past wireGuardRotationTimeout (see rotOutput.waiting).
var metricWireGuardRotationWaiting = prometheus.NewGauge(prometheus.GaugeOpts{
	Name: "kosmos_agent_wireguard_rotation_waiting",
	Help: "WireGuard peers that hold a key rotation back past its timeout: up on the current device, without the next key.",
})

// RotateWireGuardKey starts a rotation: it makes the next key (the running
// agent publishes it, hands over to it without loss and then makes it the
// node's key) and returns it. A rotation already under way is kept: its
// next key is returned.
func RotateWireGuardKey(dir string) (*WireGuardKey, error) {
	if k, err := loadWireGuardKeyFile(dir, WireGuardNextKeyFile); err != nil || k != nil {
		return k, err
	}
	// Linked, never renamed, into place: a next key written meanwhile (by
	// another command) is never replaced.
	k, err := createWireGuardKey(dir, filepath.Join(dir, WireGuardNextKeyFile), true)
	if errors.Is(err, errKeyFileExists) {
		return nil, fmt.Errorf("WireGuard rotation: %s appeared while the next key was being made (another rotation began); it is kept, run the command again to see it: %w", filepath.Join(dir, WireGuardNextKeyFile), err)
	}
	return k, err
}

// rotationDevice is the rotation device's name for a device name: the
// name with a 1 (a 2 when it ends in 1), within the 15 characters of a
// link name.
func rotationDevice(name string) string {
	base := name
	if len(base) > 14 {
		base = base[:14]
	}
	if base+"1" == name {
		return base + "2"
	}
	return base + "1"
}

// rotPeer is what the decision knows of one peer.
type rotPeer struct {
	// current is the handshake on the current device with the peer's key
	// (zero: none, or the device does not hold that key yet).
	current time.Time
	// rotation is the handshake on the rotation device with the peer's
	// rotation key (zero: none, or not held there).
	rotation time.Time
	// held: the rotation device holds the peer (under its rotation key).
	held bool
	// settled is when the current device was first seen handshaken again
	// while the rotation device held the peer (zero: not yet).
	settled time.Time
}

// rotInput is what rotationStep decides from.
type rotInput struct {
	cfg *wgConfig
	// rotating: the node has a next key.
	rotating bool
	// keyChanged is when the node's own key last changed on its current
	// device (zero: not since the agent started): handshakes before it
	// were made with the old key.
	keyChanged time.Time
	// rotatingSince is when the node took up its next key.
	rotatingSince time.Time
	// rotationKeySince is when the rotation device got its current key
	// (made, reused or given a key): handshakes there before it were made
	// with another key and prove nothing.
	rotationKeySince time.Time
	// timeout is how long promotion waits for every peer before it skips
	// the dead ones (zero: wireGuardRotationTimeout).
	timeout time.Duration
	peers   map[[32]byte]rotPeer // by the peer's current key
	now     time.Time
}

// rotOutput is what rotationStep decides.
type rotOutput struct {
	// hold are the peers the rotation device is to hold (by their rotation
	// key, at port + 1); none: the device goes.
	hold []wgPeer
	// viaRotation are the peers (by current key) whose routes go through
	// the rotation device.
	viaRotation map[[32]byte]bool
	// settle are the peers seen handshaken again on the current device for
	// the first time (their settled time is now).
	settle [][32]byte
	// promote: every peer holds the next key (or the wait timed out):
	// make the next key the node's key.
	promote bool
	// timedOut names the peers promotion did not wait for: past the
	// timeout, silent on both devices.
	timedOut []string
	// waiting names the peers that hold promotion back past the timeout:
	// live on the current device (the data plane shows them up) but
	// without a handshake on the rotation device, so they do not hold the
	// next key (their reconciler is slow or down, their agent is of an
	// earlier release, or port + 1 is blocked). Promoting would cut them
	// off; the node keeps its key and reports them.
	waiting []string
}

// rotationKey is the key under which the rotation device holds a peer: its
// next key while it rotates, else its current one.
func (p wgPeer) rotationKey() [32]byte {
	if p.hasNext {
		return p.next
	}
	return p.key
}

// rotationStep decides, for one moment, which peers the rotation device
// holds, which routes go through it and whether the node promotes its next
// key. It is pure.
//
// A pair rotates while either side has a next key: then the rotation
// device holds the peer. A peer's route goes through the rotation device
// when the current device has no handshake with it since the last key
// change on either side (its key there is new, or the node's own key
// changed after the last handshake) and the rotation device has one. A
// peer leaves the rotation device when the pair no longer rotates and the
// current device has handshaken again for wireGuardHandoverGrace.
func rotationStep(in rotInput) rotOutput {
	out := rotOutput{viaRotation: map[[32]byte]bool{}}
	if in.cfg == nil {
		return out
	}
	timeout := in.timeout
	if timeout <= 0 {
		timeout = wireGuardRotationTimeout
	}
	timedOut := in.rotating && in.now.Sub(in.rotatingSince) >= timeout
	waiting := 0
	for _, p := range in.cfg.peers {
		st := in.peers[p.key]
		currentOK := !st.current.IsZero() && st.current.After(in.keyChanged)
		rotationOK := st.held && !st.rotation.IsZero() && st.rotation.After(in.rotationKeySince) &&
			(!in.rotating || st.rotation.After(in.rotatingSince))
		pairRotates := in.rotating || p.hasNext
		keep := pairRotates
		if st.held && !keep {
			switch {
			case silentFor(in.now, wireGuardPeerSilent, st.current, st.rotation, in.rotationKeySince, in.keyChanged):
				// Dead on both devices (silent for longer than a rotation
				// may wait, and than a live peer ever is): not held on for
				// ever (the device and its ticker go with the last peer).
			case !currentOK:
				keep = true
			case st.settled.IsZero():
				out.settle = append(out.settle, p.key)
				keep = true
			case in.now.Sub(st.settled) < wireGuardHandoverGrace:
				keep = true
			}
		}
		if keep {
			rp := p
			rp.key, rp.hasNext = p.rotationKey(), false
			rp.endpoint = netip.AddrPortFrom(p.endpoint.Addr(), p.endpoint.Port()+1)
			out.hold = append(out.hold, rp)
		}
		if keep && rotationOK && !currentOK {
			out.viaRotation[p.key] = true
		}
		if !in.rotating || rotationOK {
			continue
		}
		switch {
		case !timedOut:
			waiting++
		case silentFor(in.now, wireGuardPeerSilent, st.current, in.rotatingSince):
			out.timedOut = append(out.timedOut, p.name)
		default:
			waiting++
			out.waiting = append(out.waiting, p.name)
		}
	}
	out.promote = in.rotating && waiting == 0
	if !out.promote {
		out.timedOut = nil
	}
	return out
}

// silentFor: no sign of life (the latest of signs; zero ones ignored) for
// longer than d before now; never without any sign to count from. It is
// pure.
func silentFor(now time.Time, d time.Duration, signs ...time.Time) bool {
	var last time.Time
	for _, s := range signs {
		if s.After(last) {
			last = s
		}
	}
	return !last.IsZero() && now.Sub(last) > d
}

// rotationPort is the rotation device's port for a device port; an error
// when it cannot be one (out of range, or a VXLAN port).
func rotationPort(cfg *wgConfig) (int, error) {
	p := cfg.port + 1
	if p > 65535 {
		return 0, fmt.Errorf("WireGuard rotation: port %d + 1 is out of range", cfg.port)
	}
	for _, v := range cfg.ports {
		if v == p {
			return 0, fmt.Errorf("WireGuard rotation: port %d + 1 is a VXLAN port", cfg.port)
		}
	}
	return p, nil
}

// routeVia turns the device routes of the peers in via (by current key)
// to the rotation device (its link index rot). It is pure.
func routeVia(cfg *wgConfig, routes []tableRoute, via map[[32]byte]bool, rot int) []tableRoute {
	moved := map[netip.Prefix]bool{}
	for _, p := range cfg.peers {
		if via[p.key] {
			for _, a := range p.allowed {
				moved[a] = true
			}
		}
	}
	out := make([]tableRoute, len(routes))
	for i, r := range routes {
		if !r.blackhole && moved[r.dst] {
			r.dev = rot
		}
		out[i] = r
	}
	return out
}
