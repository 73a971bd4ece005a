package nodeagent

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
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

// DefaultProbePort is the UDP port the agents answer probes on.
const DefaultProbePort = 4801

// probe wire format: 4 bytes of magic, 4 of round number, 8 of send time
// (Unix nanoseconds); a reply is the probe with the reply magic.
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
	Failover FailoverConfig
	Log      *slog.Logger
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
	pending    map[string]pendingProbe // by target key: the last round's probe
	byAddr     map[netip.Addr][]string // target keys by probed address
	round      uint32
	wantAddrs  []netip.Addr
	responders map[netip.Addr]*net.UDPConn
	bindFailed map[netip.Addr]bool
	senders    map[bool]*net.UDPConn // by is-IPv4
}

type choice struct {
	name  string
	since time.Time
}

type pendingProbe struct {
	addr  netip.Addr
	round uint32
	ok    bool
}

// NewHA returns a prober; Run starts it.
func NewHA(opts HAOptions) *HA {
	if opts.Port == 0 {
		opts.Port = DefaultProbePort
	}
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Listen == nil {
		opts.Listen = net.ListenUDP
	}
	return &HA{
		opts: opts, events: make(chan struct{}, 1),
		health: map[string]Health{}, active: map[string]choice{}, pending: map[string]pendingProbe{}, byAddr: map[netip.Addr][]string{},
		responders: map[netip.Addr]*net.UDPConn{}, bindFailed: map[netip.Addr]bool{}, senders: map[bool]*net.UDPConn{},
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
	c := peering.Choice{Remote: map[string]string{}, Local: map[string]string{}}
	for _, g := range h.groups {
		a, ok := h.active[groupKey(g)]
		if !ok {
			continue
		}
		if g.Local {
			c.Local[g.Device] = a.name
		} else if _, seen := c.Remote[g.Cluster]; !seen {
			c.Remote[g.Cluster] = a.name
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
}

// Status is the choice as NodeConfig status reports it, sorted by cluster.
func (h *HA) Status() []v1alpha1.GatewayChoice {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []v1alpha1.GatewayChoice
	for _, g := range h.groups {
		a, ok := h.active[groupKey(g)]
		if !ok || slices.ContainsFunc(out, func(c v1alpha1.GatewayChoice) bool { return c.Cluster == g.Cluster }) {
			continue
		}
		out = append(out, v1alpha1.GatewayChoice{Cluster: g.Cluster, Active: a.name, Since: metav1.NewTime(a.since.Truncate(time.Second))})
	}
	slices.SortFunc(out, func(a, b v1alpha1.GatewayChoice) int { return cmp.Compare(a.Cluster, b.Cluster) })
	return out
}

// Run probes until ctx ends.
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

// tick closes the last round (a probe unanswered is a miss), chooses, and
// sends the next round; true when a choice changed.
func (h *HA) tick(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ensureResponders()
	changed := false
	for _, g := range h.groups {
		names := make([]string, len(g.Candidates))
		for i, c := range g.Candidates {
			names[i] = c.Name
			k := targetKey(g, c.Name)
			if p, ok := h.pending[k]; ok && p.addr == c.Addr {
				h.health[k] = Observe(h.health[k], p.ok, now, h.opts.Failover)
			}
		}
		health := map[string]Health{}
		for _, c := range g.Candidates {
			health[c.Name] = h.health[targetKey(g, c.Name)]
		}
		gk := groupKey(g)
		cur := h.active[gk]
		next := Choose(names, health, cur.name, now, h.opts.Failover)
		if next == cur.name {
			continue
		}
		h.active[gk] = choice{name: next, since: now}
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
	clear(h.pending)
	clear(h.byAddr)
	msg := make([]byte, probeLen)
	copy(msg, probeMagic)
	binary.BigEndian.PutUint32(msg[4:], h.round)
	binary.BigEndian.PutUint64(msg[8:], uint64(now.UnixNano()))
	for _, g := range h.groups {
		for _, c := range g.Candidates {
			k := targetKey(g, c.Name)
			h.pending[k] = pendingProbe{addr: c.Addr, round: h.round}
			h.byAddr[c.Addr] = append(h.byAddr[c.Addr], k)
			if s := h.sender(c.Addr.Is4()); s != nil {
				// A send that fails (no route, device gone) is a miss.
				_, _ = s.WriteToUDPAddrPort(msg, netip.AddrPortFrom(c.Addr, uint16(h.opts.Port)))
			}
		}
	}
	return changed
}

// sender returns the probing socket of a family, opening it on first use
// (under h.mu).
func (h *HA) sender(v4 bool) *net.UDPConn {
	if s := h.senders[v4]; s != nil {
		return s
	}
	network := "udp6"
	if v4 {
		network = "udp4"
	}
	s, err := h.opts.Listen(network, nil)
	if err != nil {
		h.opts.Log.Error("open the gateway probe socket", "network", network, "err", err)
		return nil
	}
	h.senders[v4] = s
	go h.readReplies(s)
	return s
}

// readReplies marks the probes answered, until the socket is closed.
func (h *HA) readReplies(s *net.UDPConn) {
	buf := make([]byte, 64)
	for {
		n, from, err := s.ReadFromUDPAddrPort(buf)
		if err != nil {
			if isClosed(err) {
				return
			}
			continue
		}
		if n != probeLen || !bytes.Equal(buf[:4], replyMagic) {
			continue
		}
		round := binary.BigEndian.Uint32(buf[4:])
		sent := time.Unix(0, int64(binary.BigEndian.Uint64(buf[8:])))
		src := from.Addr().Unmap()
		h.mu.Lock()
		for _, k := range h.byAddr[src] {
			if p := h.pending[k]; p.round == round && !p.ok {
				p.ok = true
				h.pending[k] = p
				metricProbeRTT.Observe(time.Since(sent).Seconds())
			}
		}
		h.mu.Unlock()
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
		delete(h.bindFailed, a)
		h.responders[a] = c
		go respond(c)
	}
}

// respond echoes probes as replies until the socket is closed.
func respond(c *net.UDPConn) {
	buf := make([]byte, 64)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if isClosed(err) {
				return
			}
			continue
		}
		if n != probeLen || !bytes.Equal(buf[:4], probeMagic) {
			continue
		}
		copy(buf, replyMagic)
		_, _ = c.WriteToUDPAddrPort(buf[:n], from)
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
		s.Close()
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
