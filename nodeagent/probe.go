package nodeagent

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/internal/peering"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Gateway HA, the effect part. Every agent answers probes on ProbePort of
// its tunnel device addresses (a UDP echo: a probe comes back as it came,
// marked as a reply, so the answer is never larger than the question), and
// probes, every interval, each gateway candidate it may send through at the
// candidate's device address: remote gateway candidates over the
// cross-cluster device, its own cluster's candidates over vx-local. The
// probes cross the real tunnel, so a broken underlay, a dead tunnel device,
// a dead machine and a dead agent all count as misses. The choice of each
// list (failover.go) goes into the derivation (peering.DeriveWith): a
// change triggers a pass that replaces only the routes.
//
// A probe is a miss only once its timeout (separate from the interval)
// has passed without its reply: on a link whose round trip is longer than
// the interval several probes are outstanding at once, and the results
// are folded into the candidate's health in the order the probes were
// sent. Each probe carries a random 64-bit nonce; a reply counts only when
// it echoes the nonce of an outstanding probe and comes from that probe's
// candidate address (and, with BindDevice, on the device it was sent
// over). With Passive the agent answers probes and probes nothing: a node
// that does not fail over must not make others fail away from it.

// DefaultProbePort is the UDP port the agents answer probes on.
const DefaultProbePort = 4801

// DefaultProbeTimeout is how long a probe waits for its reply by default.
const DefaultProbeTimeout = 500 * time.Millisecond

// probe wire format: 4 bytes of magic, 4 of round number, 8 of random
// nonce; a reply is the probe with the reply magic. (Releases before the
// nonce carried the send time in the last 8 bytes: responders of either
// release echo both.)
var (
	probeMagic = []byte("KSP?")
	replyMagic = []byte("KSP!")
)

const probeLen = 16

// HAOptions tune the gateway prober.
type HAOptions struct {
	// Port is the probe port (DefaultProbePort when 0).
	Port int
	// Interval is the probe period (100 ms when 0).
	Interval time.Duration
	// Timeout is how long a probe may wait for its reply before it counts
	// as a miss (DefaultProbeTimeout when 0); it may exceed Interval.
	Timeout time.Duration
	// Passive answers probes but sends none and chooses nothing (routes
	// follow the plan's first candidate).
	Passive bool
	// BindDevice, when not nil, binds each probing socket to the device
	// its probes go over (SO_BINDTODEVICE), so that only replies arriving
	// on that device are read.
	BindDevice func(c *net.UDPConn, device string) error
	// DeviceGone, when not nil, says the device a probing socket is bound
	// to is gone (deleted, or recreated under a new index): the socket is
	// then opened again, at the next round. (The socket is no longer a
	// net.UDPConn once open: see probeIO.)
	DeviceGone func(c syscall.Conn) bool
	Failover   FailoverConfig
	Log        *slog.Logger
	// Listen opens a UDP socket; nil means net.ListenUDP in the calling
	// thread's network namespace (see ListenHere).
	Listen func(network string, laddr *net.UDPAddr) (*net.UDPConn, error)
}

// HA probes the gateway candidates and holds the agent's choice.
type HA struct {
	opts   HAOptions
	events chan struct{}

	mu         sync.Mutex
	groups     []peering.Group
	health     map[string]Health // by target key
	active     map[string]choice // by group key
	version    uint64
	sent       map[string][]*sentProbe // by target key, outstanding, in send order
	byNonce    map[uint64]*sentProbe
	round      uint32
	wantAddrs  []netip.Addr
	responders map[netip.Addr]*net.UDPConn
	bindFailed map[netip.Addr]bool
	senders    map[senderKey]*probeSocket
	sendFailed map[senderKey]bool // logged once until the socket opens
	// live are the sockets found still bound to a live device in this
	// round: DeviceGone is asked once per socket per round.
	live map[senderKey]bool
}

// senderKey names a probing socket: one per device and family.
type senderKey struct {
	device string
	v4     bool
}

// probeSocket is a probing socket and its batches (see probe_wire.go).
type probeSocket struct {
	io     *probeIO
	queued int // probes queued in this round
	// rcvbufWarned: the kernel refused the receive buffer, and it was
	// logged (once per socket).
	rcvbufWarned bool
}

type choice struct {
	name  string
	since time.Time
	// answered: name has answered a probe since the agent chose it; down:
	// the list's candidates the probes find down, sorted (both reported in
	// status: see GatewayChoice).
	answered bool
	down     []string
}

// sentProbe is one probe waiting for its reply or its timeout.
type sentProbe struct {
	nonce    uint64
	addr     netip.Addr
	at       time.Time
	answered bool
}

// NewHA returns a prober; Run starts it.
func NewHA(opts HAOptions) *HA {
	if opts.Port == 0 {
		opts.Port = DefaultProbePort
	}
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultProbeTimeout
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Listen == nil {
		opts.Listen = net.ListenUDP
	}
	return &HA{
		opts: opts, events: make(chan struct{}, 1),
		health: map[string]Health{}, active: map[string]choice{}, sent: map[string][]*sentProbe{}, byNonce: map[uint64]*sentProbe{},
		responders: map[netip.Addr]*net.UDPConn{}, bindFailed: map[netip.Addr]bool{}, senders: map[senderKey]*probeSocket{}, sendFailed: map[senderKey]bool{},
		live: map[senderKey]bool{},
	}
}

// Events signals every change of the choice.
func (h *HA) Events() <-chan struct{} { return h.events }

func groupKey(g peering.Group) string { return g.Cluster + "/" + g.Device }

func targetKey(g peering.Group, name string) string { return groupKey(g) + "/" + name }

// Choice is the agent's current choice, for peering.DeriveWith, and a
// version that changes with it.
func (h *HA) Choice() (peering.Choice, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := peering.Choice{Remote: map[peering.RemoteKey]string{}, Local: map[string]string{}}
	for _, g := range h.groups {
		a, ok := h.active[groupKey(g)]
		if !ok {
			continue
		}
		if g.Local {
			c.Local[g.Device] = a.name
		} else {
			c.Remote[peering.RemoteKey{Cluster: g.Cluster, Device: g.Device}] = a.name
		}
	}
	return c, h.version
}

// Update sets what to probe (the candidate lists of the config in force)
// and the addresses to answer probes on (the devices' own addresses).
func (h *HA) Update(groups []peering.Group, addrs []netip.Addr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.groups, h.wantAddrs = groups, addrs
	keep := map[string]bool{}
	for _, g := range groups {
		keep[groupKey(g)] = true
		for _, c := range g.Candidates {
			keep[targetKey(g, c.Name)] = true
		}
	}
	for k := range h.health {
		if !keep[k] {
			delete(h.health, k)
		}
	}
	for k := range h.active {
		if !keep[k] {
			delete(h.active, k)
		}
	}
	for k, ps := range h.sent {
		if !keep[k] {
			for _, p := range ps {
				delete(h.byNonce, p.nonce)
			}
			delete(h.sent, k)
		}
	}
}

// Status is the choice as NodeConfig status reports it, sorted by cluster
// and device: one entry per cluster (no device) when all its devices chose
// the same candidate (Since: the latest move), else one per device.
func (h *HA) Status() []v1alpha1.GatewayChoice {
	h.mu.Lock()
	defer h.mu.Unlock()
	var all []v1alpha1.GatewayChoice
	for _, g := range h.groups {
		if a, ok := h.active[groupKey(g)]; ok {
			answered := a.answered
			all = append(all, v1alpha1.GatewayChoice{Cluster: g.Cluster, Device: g.Device, Active: a.name, Since: metav1.NewTime(a.since.Truncate(time.Second)), Planned: planned(g),
				Down: slices.Clone(a.down), Answered: &answered})
		}
	}
	return collapseChoices(all)
}

// planned is the candidate a group's config puts first: the one the agent
// uses unless its probes moved it away.
func planned(g peering.Group) string {
	if len(g.Candidates) == 0 {
		return ""
	}
	return g.Candidates[0].Name
}

// collapseChoices merges the per-device choices of each cluster that
// agree into one entry without device, and sorts. It is pure.
func collapseChoices(all []v1alpha1.GatewayChoice) []v1alpha1.GatewayChoice {
	byCluster := map[string][]v1alpha1.GatewayChoice{}
	for _, c := range all {
		byCluster[c.Cluster] = append(byCluster[c.Cluster], c)
	}
	var out []v1alpha1.GatewayChoice
	for _, cs := range byCluster {
		agree := !slices.ContainsFunc(cs, func(c v1alpha1.GatewayChoice) bool { return c.Active != cs[0].Active || c.Planned != cs[0].Planned })
		if !agree {
			out = append(out, cs...)
			continue
		}
		one := cs[0]
		one.Device = ""
		one.Down = slices.Clone(one.Down)
		for _, c := range cs[1:] {
			if c.Since.After(one.Since.Time) {
				one.Since = c.Since
			}
			one.Down = append(one.Down, c.Down...)
			if c.Answered != nil && !*c.Answered {
				no := false
				one.Answered = &no
			}
		}
		slices.Sort(one.Down)
		one.Down = slices.Compact(one.Down)
		if len(one.Down) == 0 {
			one.Down = nil
		}
		out = append(out, one)
	}
	slices.SortFunc(out, func(a, b v1alpha1.GatewayChoice) int {
		return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Device, b.Device))
	})
	return out
}

// Run probes until ctx ends (a passive prober only keeps its responders
// bound).
func (h *HA) Run(ctx context.Context) {
	tick := time.NewTicker(h.opts.Interval)
	defer tick.Stop()
	defer h.closeAll()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if h.tick(now) {
				select {
				case h.events <- struct{}{}:
				default:
				}
			}
		}
	}
}

// tick folds in the probes answered or timed out, chooses, and sends the
// next round; true when a choice changed.
func (h *HA) tick(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ensureResponders()
	if h.opts.Passive {
		return false
	}
	changed := false
	clear(h.live)
	h.readReplies(now)
	for _, g := range h.groups {
		names := make([]string, len(g.Candidates))
		for i, c := range g.Candidates {
			names[i] = c.Name
			h.settle(targetKey(g, c.Name), c.Addr, now)
		}
		health := map[string]Health{}
		for _, c := range g.Candidates {
			health[c.Name] = h.health[targetKey(g, c.Name)]
		}
		gk := groupKey(g)
		cur := h.active[gk]
		next := Choose(names, health, cur.name, now, h.opts.Failover)
		if next == cur.name {
			// What the status says beyond the choice: a change wakes a
			// pass (which writes the status), not the routes.
			ev := evidence(names, health, next, cur.answered)
			if ev.answered != cur.answered || !slices.Equal(ev.down, cur.down) {
				cur.answered, cur.down = ev.answered, ev.down
				h.active[gk] = cur
				changed = true
			}
			continue
		}
		ev := evidence(names, health, next, false)
		h.active[gk] = choice{name: next, since: now, answered: ev.answered, down: ev.down}
		if cur.name != "" && slices.Contains(names, cur.name) {
			metricFailovers.WithLabelValues(g.Cluster).Inc()
			h.opts.Log.Info("gateway failover", "cluster", g.Cluster, "device", g.Device, "from", cur.name, "to", next)
		}
		// The first choice of a list is the plan's first candidate, which
		// the derivation uses anyway: it changes no route.
		if cur.name != "" || next != names[0] {
			changed = true
			h.version++
		}
	}
	h.round++
	var msg [probeLen]byte
	for _, g := range h.groups {
		for _, c := range g.Candidates {
			k := targetKey(g, c.Name)
			p := &sentProbe{nonce: h.nonce(), addr: c.Addr, at: now}
			h.sent[k] = append(h.sent[k], p)
			h.byNonce[p.nonce] = p
			putProbe(msg[:], h.round, p.nonce)
			if s := h.sender(g.Device, c.Addr.Is4()); s != nil {
				// A send that fails (no route, device gone) is a miss
				// once the timeout has passed.
				if s.io.add(msg[:], netip.AddrPortFrom(c.Addr, uint16(h.opts.Port))) {
					s.queued++
				}
			}
		}
	}
	for _, s := range h.senders {
		if err := s.io.reserve(probeRcvBuf(s.queued, h.opts.Timeout, h.opts.Interval)); err != nil && !s.rcvbufWarned {
			s.rcvbufWarned = true
			h.opts.Log.Warn("gateway probes: the receive buffer stays smaller than a round's replies need; replies it drops count as misses", "err", err)
		}
		s.io.flush()
		s.queued = 0
	}
	return changed
}

// evidence is what a list's status says of its choice next: whether next
// has answered (a run of replies now, or answered before while it stayed
// the choice) and the candidates down, sorted. It is pure.
func evidence(names []string, health map[string]Health, next string, answered bool) choice {
	c := choice{answered: answered || health[next].Replies > 0}
	for _, n := range names {
		if health[n].Down {
			c.down = append(c.down, n)
		}
	}
	slices.Sort(c.down)
	return c
}

// settle folds the outstanding probes of target k into its health, in the
// order they were sent, as far as each is answered (a reply) or older than
// the timeout (a miss); probes to another address than addr (the
// candidate's address changed) are dropped (under h.mu).
func (h *HA) settle(k string, addr netip.Addr, now time.Time) {
	ps := h.sent[k]
	i := 0
	for ; i < len(ps); i++ {
		p := ps[i]
		switch {
		case p.addr != addr:
		case p.answered:
			h.health[k] = Observe(h.health[k], true, now, h.opts.Failover)
		case now.Sub(p.at) >= h.opts.Timeout:
			h.health[k] = Observe(h.health[k], false, now, h.opts.Failover)
		default:
			h.sent[k] = ps[i:]
			return
		}
		delete(h.byNonce, p.nonce)
	}
	delete(h.sent, k)
}

// nonce returns a random probe nonce not outstanding (under h.mu).
func (h *HA) nonce() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		if n := binary.BigEndian.Uint64(b[:]); h.byNonce[n] == nil {
			return n
		}
	}
}

// sender returns the probing socket of a device and family, opening it on
// first use (under h.mu); a socket that cannot open is logged once.
func (h *HA) sender(device string, v4 bool) *probeSocket {
	key := senderKey{device, v4}
	if s := h.senders[key]; s != nil {
		if h.live[key] || h.opts.DeviceGone == nil || !h.opts.DeviceGone(s.io) {
			h.live[key] = true
			return s
		}
		s.io.close() // bound to a device that is gone: never sends again
		delete(h.senders, key)
	}
	network := "udp6"
	if v4 {
		network = "udp4"
	}
	s, err := h.opts.Listen(network, nil)
	if err == nil && h.opts.BindDevice != nil {
		if err = h.opts.BindDevice(s, device); err != nil {
			s.Close()
		}
	}
	var bio *probeIO
	if err == nil {
		if bio, err = newProbeIO(s, v4, true); err != nil {
			s.Close()
		}
	}
	if err != nil {
		if !h.sendFailed[key] {
			h.opts.Log.Error("open the gateway probe socket", "network", network, "device", device, "err", err)
			h.sendFailed[key] = true
		}
		return nil
	}
	delete(h.sendFailed, key)
	ps := &probeSocket{io: bio}
	h.senders[key] = ps
	return ps
}

// readReplies marks the probes answered whose replies the probing sockets
// hold, read in batches without waiting (under h.mu). The round trip is
// the kernel's receive time (else now) minus the send time.
func (h *HA) readReplies(now time.Time) {
	for _, s := range h.senders {
		for {
			n, err := s.io.recv(false)
			for i := range n {
				b, from, at := s.io.packet(i)
				nonce, ok := replyNonce(b)
				if !ok {
					continue
				}
				p := h.byNonce[nonce]
				if p == nil || p.addr != from.Addr().Unmap() || p.answered {
					continue
				}
				p.answered = true
				if at.IsZero() {
					at = now
				}
				metricProbeRTT.Observe(max(at.Sub(p.at), 0).Seconds())
			}
			if err != nil || n < probeBatch {
				break
			}
		}
	}
}

// ensureResponders answers probes on exactly the wanted addresses (under
// h.mu); an address not (yet) in the kernel is tried again next round.
func (h *HA) ensureResponders() {
	for a, c := range h.responders {
		if !slices.Contains(h.wantAddrs, a) {
			c.Close()
			delete(h.responders, a)
		}
	}
	for _, a := range h.wantAddrs {
		if h.responders[a] != nil {
			continue
		}
		network := "udp6"
		if a.Is4() {
			network = "udp4"
		}
		c, err := h.opts.Listen(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(h.opts.Port))))
		if err != nil {
			if !h.bindFailed[a] {
				h.opts.Log.Info("gateway probe responder not bound yet", "addr", a, "err", err)
				h.bindFailed[a] = true
			}
			continue
		}
		bio, err := newProbeIO(c, a.Is4(), false)
		if err != nil {
			c.Close()
			h.opts.Log.Error("gateway probe responder", "addr", a, "err", err)
			continue
		}
		delete(h.bindFailed, a)
		h.responders[a] = c
		go respond(bio)
	}
}

// respond echoes probes as replies until the socket is closed: it waits
// for a probe, reads all queued in one batch and answers them in one.
func respond(b *probeIO) {
	for {
		n, err := b.recv(true)
		if err != nil && isClosed(err) {
			return
		}
		for i := range n {
			if p, from, _ := b.packet(i); answerProbe(p) {
				b.add(p, from)
			}
		}
		b.flush()
	}
}

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }

func (h *HA) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for a, c := range h.responders {
		c.Close()
		delete(h.responders, a)
	}
	for k, s := range h.senders {
		s.io.close()
		delete(h.senders, k)
	}
}

// DeviceAddrs are the addresses of a config's devices (without length).
func DeviceAddrs(spec *v1alpha1.NodeConfigSpec) []netip.Addr {
	var out []netip.Addr
	for _, d := range spec.Devices {
		for _, a := range d.Addresses {
			if pr, err := netip.ParsePrefix(a); err == nil {
				out = append(out, pr.Addr())
			}
		}
	}
	return out
}
