package nodeagent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

// rotationState is the WireGuard key rotation's part of the agent (see
// wireguard_rotate.go). Guarded by WireGuard.mu.
type rotationState struct {
	// next is the key the node rotates to (nil: none); since is when the
	// agent took it up.
	next  *WireGuardKey
	since time.Time
	// keyChanged is when the current device last got a new own key.
	keyChanged time.Time
	// dev is the rotation device (nil: none), name its name, key its key,
	// keySince when it got that key (made, reused or given it).
	dev      wgDevice
	name     string
	key      [32]byte
	keySince time.Time
	// waiting is the peers last reported as holding promotion back.
	waiting string
	// timeout is how long promotion waits for every peer (zero: the
	// default, wireGuardRotationTimeout).
	timeout time.Duration
	// adoptChecked: a rotation device left by an earlier agent has been
	// looked for (once, at the first pass with a device).
	adoptChecked bool
	// settled: when the current device was first seen handshaken again
	// with a peer the rotation device holds, by the peer's current key.
	settled map[[32]byte]time.Time
	// via are the peers (by current key) routed through the rotation
	// device.
	via map[[32]byte]bool
	// stop ends the ticker while the device exists; events tell Run that
	// the status changed (a rotation began or completed).
	stop   chan struct{}
	events chan struct{}
}

// Events signals that the WireGuard status changed outside a pass (a key
// rotation began or completed), so that the agent reports it.
func (w *WireGuard) Events() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.rot.events == nil {
		w.rot.events = make(chan struct{}, 1)
	}
	return w.rot.events
}

func (w *WireGuard) signal() {
	if w.rot.events == nil {
		w.rot.events = make(chan struct{}, 1)
	}
	select {
	case w.rot.events <- struct{}{}:
	default:
	}
}

// reloadNextKey takes up a next key written in the state directory (kosmos
// agent --rotate-wireguard-key): the rotation begins. A next key removed
// by hand ends the rotation before promotion (the rotation device then
// settles and goes).
func (w *WireGuard) reloadNextKey() {
	if w.dir == "" {
		return
	}
	k, err := loadWireGuardKeyFile(w.dir, WireGuardNextKeyFile)
	switch {
	case err != nil:
		w.log.Error("WireGuard next key unreadable; no rotation", "err", err)
		return
	case k == nil && w.rot.next != nil:
		w.log.Warn("WireGuard next key removed: rotation abandoned", "nextPublicKey", w.rot.next.PublicKey())
		w.rot.next = nil
		w.signal()
	case k == nil:
	case k.public == w.key.public:
		_ = os.Remove(filepath.Join(w.dir, WireGuardNextKeyFile))
	case w.rot.next == nil || w.rot.next.public != k.public:
		w.rot.next, w.rot.since = k, time.Now()
		w.log.Info("WireGuard rotation begun: next key published, the current one stays in use until every peer holds it", "publicKey", w.key.PublicKey(), "nextPublicKey", k.PublicKey())
		w.signal()
	}
}

// rotate runs one step of the rotation for cfg (the current device is up):
// the rotation device with its peers, the routes through it, promotion,
// and the rotation device's peers that have settled. It runs in Sync and
// on every tick while the rotation device exists.
func (w *WireGuard) rotate(cfg *wgConfig) error {
	if w.dev != nil && w.rot.dev == nil && !w.rot.adoptChecked {
		w.rot.adoptChecked = true
		if l, err := netlink.LinkByName(rotationDevice(cfg.device)); err == nil && adoptRotationLink(l.Type()) {
			// A kernel rotation device outlives its agent, like the main
			// one: taken over (its key and tunnels kept), the step below
			// then keeps it for a rotation under way or lets it settle
			// and go.
			if err := w.ensureRotationDevice(cfg); err != nil {
				return fmt.Errorf("WireGuard device %s left by an earlier agent: %w", l.Attrs().Name, err)
			}
			w.log.Info("WireGuard rotation device of an earlier agent taken over", "device", w.rot.name)
		}
	}
	if w.dev == nil || cfg == nil || (w.rot.dev == nil && w.rot.next == nil && !anyNext(cfg)) {
		return nil
	}
	out, err := w.rotationDecision(cfg, false)
	if err != nil {
		return err
	}
	w.reportWaiting(out.waiting)
	if out.promote {
		if len(out.timedOut) > 0 {
			w.log.Warn("WireGuard rotation: promoting without a handshake from every peer (timed out)", "peers", out.timedOut)
		}
		// Routes onto the rotation device first: the current device's
		// sessions stop sending once its key changes. The rotation device
		// keeps the next key throughout (w.rot.next stays set until
		// promote: its key must not change, or its sessions would end).
		prevChanged := w.rot.keyChanged
		w.rot.keyChanged = time.Now()
		if out, err = w.rotationDecision(cfg, true); err == nil {
			err = w.applyRotation(cfg, out)
		}
		if err == nil {
			err = w.promote(w.rot.next)
		}
		if err != nil {
			w.rot.keyChanged = prevChanged
			// A next key file changed or removed meanwhile: take up what
			// it holds now (a new rotation, or none) rather than retry
			// the refused promotion on every tick.
			w.reloadNextKey()
		}
		return err
	}
	return w.applyRotation(cfg, out)
}

func anyNext(cfg *wgConfig) bool {
	for _, p := range cfg.peers {
		if p.hasNext {
			return true
		}
	}
	return false
}

// rotationDecision reads the handshakes of both devices and decides
// (promoting: as if the next key were the node's key already).
func (w *WireGuard) rotationDecision(cfg *wgConfig, promoting bool) (rotOutput, error) {
	cur, err := w.dev.handshakeTimes()
	if err != nil {
		return rotOutput{}, fmt.Errorf("WireGuard device %s: read handshakes: %w", cfg.device, err)
	}
	var rot map[[32]byte]time.Time
	if w.rot.dev != nil {
		if rot, err = w.rot.dev.handshakeTimes(); err != nil {
			return rotOutput{}, fmt.Errorf("WireGuard device %s: read handshakes: %w", w.rot.name, err)
		}
	}
	in := rotInput{cfg: cfg, rotating: w.rot.next != nil && !promoting, keyChanged: w.rot.keyChanged, rotatingSince: w.rot.since,
		rotationKeySince: w.rot.keySince, timeout: w.rot.timeout, peers: map[[32]byte]rotPeer{}, now: time.Now()}
	for _, p := range cfg.peers {
		t, held := rot[p.rotationKey()]
		in.peers[p.key] = rotPeer{current: cur[p.key], rotation: t, held: held, settled: w.rot.settled[p.key]}
	}
	out := rotationStep(in)
	if w.rot.settled == nil {
		w.rot.settled = map[[32]byte]time.Time{}
	}
	for _, k := range out.settle {
		w.rot.settled[k] = in.now
	}
	for k := range w.rot.settled {
		if st := in.peers[k]; !st.held {
			delete(w.rot.settled, k)
		}
	}
	return out, nil
}

// applyRotation makes the rotation device hold out.hold (made when
// needed), moves the routes, and then removes the peers it no longer
// holds, or the whole device.
func (w *WireGuard) applyRotation(cfg *wgConfig, out rotOutput) error {
	var errs []error
	if len(out.hold) > 0 {
		if err := w.ensureRotationDevice(cfg); err != nil {
			// No rotation device: every route stays on the current one.
			out.viaRotation = nil
			errs = append(errs, err)
		} else if have, err := w.rot.dev.peers(); err != nil {
			errs = append(errs, fmt.Errorf("WireGuard device %s: read peers: %w", w.rot.name, err))
		} else if up, _ := peerChanges(have, out.hold); len(up) > 0 {
			if err := w.rot.dev.setPeers(nil, up); err != nil {
				errs = append(errs, fmt.Errorf("WireGuard device %s: set peers: %w", w.rot.name, err))
			}
		}
	}
	moved := !mapsEqual(w.rot.via, out.viaRotation)
	w.rot.via = out.viaRotation
	if moved {
		if err := w.syncRoutes(cfg, false); err != nil {
			errs = append(errs, err)
		} else {
			w.log.Info("WireGuard routes moved", "viaRotationDevice", len(out.viaRotation), "peers", len(cfg.peers))
		}
	}
	if w.rot.dev == nil {
		return errors.Join(errs...)
	}
	if len(out.hold) == 0 && w.rot.next == nil {
		w.log.Info("WireGuard rotation done: rotation device removed", "device", w.rot.name, "publicKey", w.key.PublicKey())
		w.closeRotation()
		return errors.Join(errs...)
	}
	if have, err := w.rot.dev.peers(); err == nil {
		if _, gone := peerChanges(have, out.hold); len(gone) > 0 {
			if err := w.rot.dev.setPeers(gone, nil); err != nil {
				errs = append(errs, fmt.Errorf("WireGuard device %s: remove peers: %w", w.rot.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func mapsEqual(a, b map[[32]byte]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// ensureRotationDevice makes the rotation device (the node's next key, else
// its current one; port + 1) and starts the ticker.
func (w *WireGuard) ensureRotationDevice(cfg *wgConfig) error {
	key := w.key
	if w.rot.next != nil {
		key = w.rot.next
	}
	if w.rot.dev != nil {
		if _, err := netlink.LinkByName(w.rot.name); err != nil {
			w.closeRotation()
		}
	}
	if w.rot.dev != nil && w.rot.key != key.public {
		if err := w.rot.dev.setKey(key); err != nil {
			return fmt.Errorf("WireGuard device %s: set key: %w", w.rot.name, err)
		}
		w.rot.key, w.rot.keySince = key.public, time.Now()
	}
	if w.rot.dev == nil {
		port, err := rotationPort(cfg)
		if err != nil {
			return err
		}
		rc := *cfg
		rc.device, rc.port = rotationDevice(cfg.device), port
		dev, err := openWireGuardDevice(&rc, w.mtu, key)
		if err != nil {
			return err
		}
		w.rot.dev, w.rot.name, w.rot.key, w.rot.keySince = dev, rc.device, key.public, time.Now()
		w.log.Info("WireGuard rotation device created", "device", rc.device, "port", port, "path", dev.path(), "publicKey", key.PublicKey())
		w.rot.stop = make(chan struct{})
		go w.tick(w.rot.stop)
	}
	l, err := netlink.LinkByName(w.rot.name)
	if err != nil {
		return fmt.Errorf("WireGuard device %s: %w", w.rot.name, err)
	}
	if w.mtu > 0 && l.Attrs().MTU != w.mtu {
		if err := netlink.LinkSetMTU(l, w.mtu); err != nil {
			return fmt.Errorf("WireGuard device %s: set mtu %d: %w", w.rot.name, w.mtu, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("WireGuard device %s: set up: %w", w.rot.name, err)
	}
	return ensureLooseRPFilter(w.rot.name)
}

// SetRotationTimeout sets how long a key rotation waits for a handshake
// from every peer on the rotation device before it promotes without the
// peers that are dead (silent on the current device too); a live peer is
// waited for beyond it. Zero or less: the default, two minutes.
func (w *WireGuard) SetRotationTimeout(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rot.timeout = d
}

// reportWaiting logs, once per change, the peers that hold a rotation's
// promotion back past the timeout (live on the current device, without the
// next key), and counts them in kosmos_agent_wireguard_rotation_waiting.
func (w *WireGuard) reportWaiting(peers []string) {
	metricWireGuardRotationWaiting.Set(float64(len(peers)))
	s := strings.Join(peers, ",")
	if s == w.rot.waiting {
		return
	}
	w.rot.waiting = s
	if s != "" {
		w.log.Warn("WireGuard rotation waiting: these peers are up on the current device but hold no next key (their reconciler or agent has not taken it up, or UDP port + 1 is blocked); the current key stays in use until they do", "peers", peers, "device", w.name)
	}
}

// tick re-runs the rotation step every wireGuardRotationTick until stop.
func (w *WireGuard) tick(stop chan struct{}) {
	t := time.NewTicker(wireGuardRotationTick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		w.mu.Lock()
		if w.cfg != nil && w.dev != nil {
			if err := w.rotate(w.cfg); err != nil {
				w.log.Error("WireGuard rotation step", "err", err)
			}
		}
		w.mu.Unlock()
	}
}

// promote makes the next key the node's key: the key file first (a
// restart then keeps it), then the current device. The file renamed is
// checked to hold next (a key written there since is never promoted
// unseen). When the device refuses the key, both files and the agent's
// state go back: the rotation stays under way.
func (w *WireGuard) promote(next *WireGuardKey) error {
	nextPath, keyPath := filepath.Join(w.dir, WireGuardNextKeyFile), filepath.Join(w.dir, WireGuardKeyFile)
	k, err := loadWireGuardKeyFile(w.dir, WireGuardNextKeyFile)
	if err != nil {
		return fmt.Errorf("WireGuard rotation: check the next key before promoting it: %w", err)
	}
	if err := checkPromoted(k, next); err != nil {
		return err
	}
	if err := os.Rename(nextPath, keyPath); err != nil {
		return fmt.Errorf("WireGuard rotation: make the next key the node's key: %w", err)
	}
	if d, err := os.Open(w.dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	prev := w.key
	if w.dev != nil {
		if err := w.dev.setKey(next); err != nil {
			err = fmt.Errorf("WireGuard device %s: set the next key: %w", w.name, err)
			if rerr := w.unpromote(prev, nextPath, keyPath); rerr != nil {
				// reloadKey takes the file's key up on the next pass.
				err = errors.Join(err, rerr)
			}
			return err
		}
	}
	w.key, w.rot.next = next, nil
	w.rot.keyChanged = time.Now()
	w.log.Info("WireGuard key rotated", "publicKey", next.PublicKey(), "previous", prev.PublicKey())
	w.signal()
	return nil
}

// checkPromoted: the next key file holds (inFile) the key the rotation
// handed over to (next). It is pure.
func checkPromoted(inFile, next *WireGuardKey) error {
	switch {
	case inFile == nil:
		return fmt.Errorf("WireGuard rotation: %s is gone; the key %s is not promoted", WireGuardNextKeyFile, next.PublicKey())
	case inFile.public != next.public:
		return fmt.Errorf("WireGuard rotation: %s now holds key %s, not %s which the peers were given; not promoted (the new next key is taken up on the next pass)", WireGuardNextKeyFile, inFile.PublicKey(), next.PublicKey())
	}
	return nil
}

// unpromote puts the files back after a failed promotion: the next key
// back in its file (never over one written since), the previous key in
// the key file.
func (w *WireGuard) unpromote(prev *WireGuardKey, nextPath, keyPath string) error {
	if err := os.Link(keyPath, nextPath); err != nil {
		return fmt.Errorf("WireGuard rotation: put the next key back in %s: %w", nextPath, err)
	}
	if err := writeWireGuardKeyFile(w.dir, keyPath, prev.private, false); err != nil {
		return fmt.Errorf("WireGuard rotation: put the previous key back: %w", err)
	}
	return nil
}

// promoteIdle promotes a next key at once on a node without a WireGuard
// device: no tunnel uses the key, so there is nothing to hand over.
func (w *WireGuard) promoteIdle() {
	if w.rot.next == nil || w.dev != nil {
		return
	}
	if err := w.promote(w.rot.next); err != nil {
		w.log.Error("WireGuard rotation", "err", err)
	}
}

// closeRotation ends the rotation device and its ticker.
func (w *WireGuard) closeRotation() {
	name, had := w.rot.name, w.rot.dev != nil
	w.releaseRotation()
	if had {
		if l, err := netlink.LinkByName(name); err == nil && l.Type() == "wireguard" {
			_ = netlink.LinkDel(l)
		}
	}
}

// releaseRotation lets go of the rotation device and ends its ticker; a
// kernel device stays (the agent is stopping: like the main device, it
// keeps its tunnels over a restart, and the next agent takes it over).
func (w *WireGuard) releaseRotation() {
	if w.rot.stop != nil {
		close(w.rot.stop)
		w.rot.stop = nil
	}
	if w.rot.dev != nil {
		w.rot.dev.close()
		w.rot.dev = nil
	}
	w.rot.via, w.rot.settled = nil, nil
	w.reportWaiting(nil)
}

// adoptRotationLink: a link of the rotation device's name found at start
// is taken over when it is a kernel WireGuard device (Kosmos's, left by an
// earlier agent). A TUN of a userspace one dies with its agent (and one
// left over is replaced when a rotation device is made); any other link is
// not Kosmos's and is left alone. It is pure.
func adoptRotationLink(linkType string) bool { return linkType == "wireguard" }

// syncRoutes syncs the agent's table for cfg: each peer's routes through
// the current device, or the rotation device when the rotation routes it
// there.
func (w *WireGuard) syncRoutes(cfg *wgConfig, remove bool) error {
	want := wireGuardRoutes(cfg, w.devIndex())
	if len(w.rot.via) > 0 && w.rot.dev != nil {
		if l, err := netlink.LinkByName(w.rot.name); err == nil {
			want = routeVia(cfg, want, w.rot.via, l.Attrs().Index)
		}
	}
	return syncTableRoutes(want, remove)
}
