package nodeagent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// WireGuard is the agent's WireGuard device and its routing: Sync makes
// them match a NodeConfig (call it before the VXLAN part is applied, so that
// no FDB entry to an encrypted peer exists before its route into the
// device). The device is the kernel's where the kernel has WireGuard (it
// outlives the agent), else wireguard-go over a TUN device in this process
// (Close ends it); either way the blackholes stay, so that nothing goes out
// in clear while there is no device.
type WireGuard struct {
	key *WireGuardKey
	dir string // where the key file is re-read on every pass ("" never)
	log *slog.Logger

	mu    sync.Mutex
	dev   wgDevice
	name  string
	peers map[[32]byte]bool
	sent  string // the last peer set applied (uapiPeers text, compared only)
	cfg   *wgConfig
	// handshaken is the number of peers with a handshake at the last pass.
	handshaken int
	// clean: nothing of WireGuard is left in the kernel (checked once, then
	// kept true while no config asks for it, so that a node without
	// encryption pays nothing per pass).
	clean bool
}

// NewWireGuard prepares the agent's WireGuard with the node's key, kept in
// dir (re-read on every pass, so that a rotated key is taken up); it makes
// no device until a NodeConfig asks for one.
func NewWireGuard(key *WireGuardKey, dir string, log *slog.Logger) *WireGuard {
	if log == nil {
		log = slog.Default()
	}
	return &WireGuard{key: key, dir: dir, log: log}
}

// reloadKey takes up a key rotated in the state directory: the device gets
// the new private key, its peers stay.
func (w *WireGuard) reloadKey() error {
	if w.dir == "" {
		return nil
	}
	k, err := LoadOrCreateWireGuardKey(w.dir)
	if err != nil {
		return err
	}
	if k.public == w.key.public {
		return nil
	}
	if w.dev != nil {
		if err := w.dev.setKey(k); err != nil {
			return fmt.Errorf("WireGuard device %s: set the rotated key: %w", w.name, err)
		}
	}
	w.log.Info("WireGuard key rotated", "publicKey", k.PublicKey(), "previous", w.key.PublicKey())
	w.key = k
	return nil
}

// Sync makes the device, its peers, the policy rules and the agent's table
// match spec (nil: no device, no rule, no table).
func (w *WireGuard) Sync(spec *v1alpha1.NodeConfigSpec) error {
	var cfg *wgConfig
	if spec != nil {
		var err error
		if cfg, err = wireGuardConfig(spec); err != nil {
			return err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.reloadKey(); err != nil {
		w.log.Error("WireGuard key not reloaded; keeping the one in use", "err", err)
	}
	if cfg == nil {
		w.closeDevice()
		w.cfg = nil
		if w.clean {
			return nil
		}
		err := TeardownWireGuard()
		w.clean = err == nil
		return err
	}
	w.clean = false
	var errs []error
	if err := w.ensureDevice(cfg, underlayMTU(spec)); err != nil {
		return err // no device: the rules stay as they were (fail closed)
	}
	if err := w.setPeers(cfg); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, syncWireGuardRoutes(cfg), syncWireGuardRules(cfg))
	w.cfg = cfg
	metricWireGuardPeers.Reset()
	metricWireGuardPeers.WithLabelValues(w.dev.path()).Set(float64(len(cfg.peers)))
	if hs, err := w.dev.handshakes(); err == nil {
		n := 0
		for _, t := range hs {
			if t > 0 {
				n++
			}
		}
		w.handshaken = n
		metricWireGuardHandshakes.Set(float64(n))
	}
	return errors.Join(errs...)
}

// Status is what the agent reports: its public key always, the path and
// peers when it holds a device.
func (w *WireGuard) Status() *v1alpha1.WireGuardStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := &v1alpha1.WireGuardStatus{PublicKey: w.key.PublicKey()}
	if w.dev != nil && w.cfg != nil {
		st.Path, st.Peers, st.Handshaken = w.dev.path(), int32(len(w.cfg.peers)), int32(w.handshaken)
	}
	return st
}

// Close ends a userspace device (a kernel one stays); rules and blackholes
// stay.
func (w *WireGuard) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dev != nil {
		w.dev.close()
		w.dev = nil
	}
}

// closeDevice removes the device: a userspace one ends, a kernel one is
// deleted (TeardownWireGuard deletes what is left).
func (w *WireGuard) closeDevice() {
	if w.dev != nil {
		w.dev.close()
		w.dev, w.peers, w.sent, w.handshaken = nil, nil, "", 0
		metricWireGuardPeers.Reset()
		metricWireGuardHandshakes.Set(0)
	}
}

// ensureDevice makes the device when there is none or its name changed:
// the kernel's (reusing one left by an earlier agent) where the kernel has
// WireGuard, else userspace; and keeps it up with its MTU.
func (w *WireGuard) ensureDevice(cfg *wgConfig, mtu int) error {
	if w.dev != nil && w.name != cfg.device {
		w.closeDevice()
		_ = TeardownWireGuard()
	}
	if w.dev == nil {
		dev, err := openWireGuardDevice(cfg, mtu, w.key)
		if err != nil {
			return err
		}
		w.dev, w.name, w.peers, w.sent = dev, cfg.device, map[[32]byte]bool{}, ""
		w.log.Info("WireGuard device created", "device", cfg.device, "path", dev.path(), "port", cfg.port, "publicKey", w.key.PublicKey())
	}
	l, err := netlink.LinkByName(cfg.device)
	if err != nil {
		return fmt.Errorf("WireGuard device %s: %w", cfg.device, err)
	}
	if l.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("WireGuard device %s: set mtu %d: %w", cfg.device, mtu, err)
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("WireGuard device %s: set up: %w", cfg.device, err)
		}
	}
	return nil
}

// setPeers applies the peer changes, when there are any.
func (w *WireGuard) setPeers(cfg *wgConfig) error {
	want := uapiPeers(nil, cfg.peers)
	if want == w.sent {
		return nil
	}
	if err := w.dev.setPeers(w.peers, cfg.peers); err != nil {
		w.sent = "" // unknown: apply everything again next pass
		return fmt.Errorf("WireGuard device %s: set peers: %w", cfg.device, err)
	}
	w.peers = map[[32]byte]bool{}
	for _, p := range cfg.peers {
		w.peers[p.key] = true
	}
	w.sent = want
	return nil
}

// underlayMTU is the WireGuard device's MTU: that of the interface holding
// the first cross-cluster device's underlay address, minus WireGuard's
// overhead; 1420 when it cannot be told.
func underlayMTU(spec *v1alpha1.NodeConfigSpec) int {
	for _, d := range spec.Devices {
		if d.Name != v1alpha1.DeviceBridge && d.Name != v1alpha1.DeviceBridge6 {
			continue
		}
		l := Link{Local: d.UnderlayIP, Parent: d.NIC, MTU: 0}
		if err := (&LinuxKernel{}).Resolve(&l); err == nil {
			if p, err := netlink.LinkByName(l.Parent); err == nil {
				return p.Attrs().MTU - v1alpha1.WireGuardOverheadBytes
			}
		}
	}
	return 1500 - v1alpha1.WireGuardOverheadBytes
}

func familyOf(fam int) int {
	if fam == 6 {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}

// syncWireGuardRoutes makes the agent's table hold exactly the device
// route and the blackhole of every allowed prefix; added before deleted.
func syncWireGuardRoutes(cfg *wgConfig) error {
	link, err := netlink.LinkByName(cfg.device)
	if err != nil {
		return fmt.Errorf("WireGuard routes: %w", err)
	}
	held, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: WireGuardTable}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list table %d: %w", WireGuardTable, err)
	}
	toNL := func(r tableRoute) *netlink.Route {
		dst := &net.IPNet{IP: r.dst.Addr().AsSlice(), Mask: net.CIDRMask(r.dst.Bits(), r.dst.Addr().BitLen())}
		nr := &netlink.Route{Dst: dst, Table: WireGuardTable, Protocol: RouteProtocol}
		if r.blackhole {
			nr.Type, nr.Priority = unix.RTN_BLACKHOLE, wireGuardBlackholeMetric
		} else {
			nr.LinkIndex, nr.Scope = link.Attrs().Index, netlink.SCOPE_LINK
		}
		return nr
	}
	key := func(dst string, blackhole bool) string { return fmt.Sprint(dst, blackhole) }
	want := map[string]bool{}
	var errs []error
	for _, r := range wireGuardRoutes(cfg) {
		want[key(r.dst.String(), r.blackhole)] = true
		if err := netlink.RouteReplace(toNL(r)); err != nil {
			errs = append(errs, fmt.Errorf("route %s (blackhole %v) table %d: %w", r.dst, r.blackhole, WireGuardTable, err))
		}
	}
	for _, h := range held {
		if h.Dst == nil {
			continue
		}
		ones, _ := h.Dst.Mask.Size()
		dst := fmt.Sprintf("%s/%d", h.Dst.IP, ones)
		bh := h.Type == unix.RTN_BLACKHOLE
		if want[key(dst, bh)] && (bh || h.LinkIndex == link.Attrs().Index) {
			continue
		}
		h := h
		if err := netlink.RouteDel(&h); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s table %d: %w", dst, WireGuardTable, err))
		}
	}
	return errors.Join(errs...)
}

// wireGuardRules are the agent's policy rules for cfg: UDP to each
// cross-cluster VXLAN port looks up the agent's table first.
func wireGuardRules(cfg *wgConfig) []netlink.Rule {
	var out []netlink.Rule
	for _, fam := range []int{4, 6} {
		port, ok := cfg.ports[fam]
		if !ok {
			continue
		}
		r := netlink.NewRule()
		r.Family, r.Priority, r.Table = familyOf(fam), WireGuardRulePriority, WireGuardTable
		r.IPProto = unix.IPPROTO_UDP
		r.Dport = netlink.NewRulePortRange(uint16(port), uint16(port))
		out = append(out, *r)
	}
	return out
}

// syncWireGuardRules makes the rules at the agent's priority exactly those
// of cfg (nil: none). Rules at other priorities are never touched.
func syncWireGuardRules(cfg *wgConfig) error {
	var want []netlink.Rule
	if cfg != nil {
		want = wireGuardRules(cfg)
	}
	var errs []error
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		held, err := netlink.RuleListFiltered(fam, &netlink.Rule{Priority: WireGuardRulePriority}, netlink.RT_FILTER_PRIORITY)
		if err != nil {
			errs = append(errs, fmt.Errorf("list rules: %w", err))
			continue
		}
		matched := map[int]bool{}
		for _, h := range held {
			keep := false
			for i, r := range want {
				if r.Family == fam && h.Table == r.Table && h.IPProto == r.IPProto && h.Dport != nil && *h.Dport == *r.Dport && !matched[i] {
					matched[i], keep = true, true
					break
				}
			}
			if !keep {
				h := h
				h.Family = fam
				if err := netlink.RuleDel(&h); err != nil {
					errs = append(errs, fmt.Errorf("delete rule priority %d: %w", WireGuardRulePriority, err))
				}
			}
		}
		for i, r := range want {
			if r.Family != fam || matched[i] {
				continue
			}
			if err := netlink.RuleAdd(&r); err != nil {
				errs = append(errs, fmt.Errorf("add rule priority %d ipproto udp dport %d lookup %d: %w", WireGuardRulePriority, r.Dport.Start, WireGuardTable, err))
			}
		}
	}
	return errors.Join(errs...)
}

// TeardownWireGuard removes the agent's policy rules, its table's routes
// and a WireGuard TUN device left behind.
func TeardownWireGuard() error {
	errs := []error{syncWireGuardRules(nil)}
	held, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: WireGuardTable}, netlink.RT_FILTER_TABLE)
	if err != nil {
		errs = append(errs, err)
	}
	for _, h := range held {
		h := h
		if err := netlink.RouteDel(&h); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route table %d: %w", WireGuardTable, err))
		}
	}
	if l, err := netlink.LinkByName(v1alpha1.DeviceWireGuard); err == nil && (l.Type() == "tuntap" || l.Type() == "wireguard") {
		errs = append(errs, netlink.LinkDel(l))
	}
	return errors.Join(errs...)
}
