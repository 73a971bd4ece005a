package nodeagent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// WireGuard is the agent's WireGuard device and its routing, applied in two
// halves around the VXLAN part (Set). Sync, before Set, only adds: the
// policy rule and the blackholes first (they need no device, so nothing
// to an encrypted peer leaves in clear even when the device cannot be
// made), then the device, its peers and its routes. Settle, after Set,
// removes what the config no longer asks for (peers, routes, rules, the
// whole device when encryption is off), and only when Set succeeded: until
// the FDB no longer sends to a peer, its route into the device stays. The
// device is the kernel's where the kernel has WireGuard (it outlives the
// agent), else wireguard-go over a TUN device in this process (Close ends
// it); either way the blackholes stay, so that nothing goes out in clear
// while there is no device.
type WireGuard struct {
	key *WireGuardKey
	dir string // where the key file is re-read on every pass ("" never)
	log *slog.Logger

	mu   sync.Mutex
	dev  wgDevice
	name string
	cfg  *wgConfig
	// warn is what went wrong in this pass's Sync without stopping it (no
	// device, peers not set, dropped peers); Settle reports it.
	warn error
	// handshaken is the number of peers with a handshake at the last pass.
	handshaken int
	// clean: nothing of WireGuard is left in the kernel (checked once, then
	// kept true while no config asks for it, so that a node without
	// encryption pays nothing per pass).
	clean bool
	// rot is the key rotation's state (wireguard_rotate_linux.go); mtu the
	// devices' MTU of the last pass.
	rot rotationState
	mtu int
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
		w.rot.keyChanged = time.Now()
	}
	w.log.Info("WireGuard key rotated", "publicKey", k.PublicKey(), "previous", w.key.PublicKey())
	w.key = k
	return nil
}

// Sync is the half that runs before Set: it only adds. An error means the
// fail-closed part (rule, blackholes) could not be installed, or the config
// is refused: the pass must be skipped, the kernel keeping its last state.
// A missing device or peers not set are not errors here: the blackholes
// hold VXLAN to the encrypted peers back, the pass goes on for the others,
// and Settle reports them.
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
	w.warn = nil
	if err := w.reloadKey(); err != nil {
		w.log.Error("WireGuard key not reloaded; keeping the one in use", "err", err)
	}
	w.reloadNextKey()
	if cfg != nil {
		cfg.dropOwnNext(w.ownKeys()...)
	}
	if cfg == nil {
		w.promoteIdle()
		return nil
	}
	w.clean = false
	// Fail closed first: these need no device.
	if err := addWireGuardRules(cfg); err != nil {
		return err
	}
	if err := syncWireGuardRoutes(cfg, 0, false); err != nil {
		return err
	}
	warns := []error{cfg.droppedError()}
	if err := w.ensureDevice(cfg, underlayMTU(spec)); err != nil {
		w.cfg, w.warn = cfg, errors.Join(append(warns, fmt.Errorf("encrypted peers unreachable (blackholed): %w", err))...)
		metricWireGuardPeers.Reset()
		return nil
	}
	// The rotation moves routes off the current device before addPeers
	// swaps a peer's key there.
	w.mtu = underlayMTU(spec)
	if err := w.rotate(cfg); err != nil {
		warns = append(warns, err)
	}
	if err := w.addPeers(cfg); err != nil {
		warns = append(warns, err)
	}
	if err := w.syncRoutes(cfg, false); err != nil {
		warns = append(warns, err)
	}
	w.cfg, w.warn = cfg, errors.Join(warns...)
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
	return nil
}

// Settle is the half that runs after Set (setErr its error): when Set
// succeeded, it removes the peers, routes and rules spec no longer asks for
// (all of them and the device when spec asks for no WireGuard); when Set
// failed, nothing is removed (the FDB may still send to them). It returns
// what went wrong in this pass's WireGuard part, to be reported: never a
// reason to undo the pass.
func (w *WireGuard) Settle(spec *v1alpha1.NodeConfigSpec, setErr error) error {
	var cfg *wgConfig
	if spec != nil {
		cfg, _ = wireGuardConfig(spec) // Sync accepted it
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if cfg != nil {
		cfg.dropOwnNext(w.ownKeys()...)
	}
	errs := []error{w.warn}
	w.warn = nil
	if setErr != nil {
		return errors.Join(errs...)
	}
	if cfg == nil {
		w.closeDevice()
		w.cfg = nil
		if !w.clean {
			err := TeardownWireGuard(w.name)
			w.clean = err == nil
			if err != nil {
				errs = append(errs, fmt.Errorf("WireGuard teardown (retried next pass): %w", err))
			}
		}
		return errors.Join(errs...)
	}
	if w.dev != nil {
		if err := w.removePeers(cfg); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, w.syncRoutes(cfg, true), syncWireGuardRules(cfg))
	return errors.Join(errs...)
}

// ownKeys are the node's public keys: its key and its next one.
func (w *WireGuard) ownKeys() [][32]byte {
	own := [][32]byte{w.key.public}
	if w.rot.next != nil {
		own = append(own, w.rot.next.public)
	}
	return own
}

// Status is what the agent reports: its public key always, the path and
// peers when it holds a device.
func (w *WireGuard) Status() *v1alpha1.WireGuardStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := &v1alpha1.WireGuardStatus{PublicKey: w.key.PublicKey()}
	if w.rot.next != nil {
		st.NextPublicKey = w.rot.next.PublicKey()
	}
	if w.dev != nil && w.cfg != nil {
		st.Path, st.Peers, st.Handshaken = w.dev.path(), int32(len(w.cfg.peers)), int32(w.handshaken)
	}
	return st
}

// Close ends a userspace device (a kernel one stays, the rotation
// device's too); rules and blackholes stay.
func (w *WireGuard) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dev != nil {
		w.dev.close()
		w.dev = nil
	}
	w.releaseRotation()
}

// closeDevice removes the device: a userspace one ends, a kernel one is
// deleted (TeardownWireGuard deletes what is left).
func (w *WireGuard) closeDevice() {
	if w.dev != nil {
		w.dev.close()
		w.dev, w.handshaken = nil, 0
		metricWireGuardPeers.Reset()
		metricWireGuardHandshakes.Set(0)
	}
	w.closeRotation()
}

// devIndex is the device's link index (0: no device).
func (w *WireGuard) devIndex() int {
	if w.dev == nil {
		return 0
	}
	l, err := netlink.LinkByName(w.name)
	if err != nil {
		return 0
	}
	return l.Attrs().Index
}

// ensureDevice makes the device when there is none, its name changed or it
// was deleted from outside: the kernel's (reusing one left by an earlier
// agent) where the kernel has WireGuard, else userspace; and keeps it up
// with its MTU and loose reverse-path filtering.
func (w *WireGuard) ensureDevice(cfg *wgConfig, mtu int) error {
	if w.dev != nil && w.name != cfg.device {
		// Renamed: the old device goes (its routes with it; the rule and
		// the blackholes stay, so nothing leaves in clear meanwhile).
		w.closeDevice()
		if l, err := netlink.LinkByName(w.name); err == nil && (l.Type() == "tuntap" || l.Type() == "wireguard") {
			_ = netlink.LinkDel(l)
		}
	}
	if w.dev != nil {
		if _, err := netlink.LinkByName(w.name); errors.As(err, new(netlink.LinkNotFoundError)) {
			w.log.Warn("WireGuard device gone; recreating it", "device", w.name)
			w.closeDevice()
		}
	}
	if w.dev == nil {
		dev, err := openWireGuardDevice(cfg, mtu, w.key)
		if err != nil {
			return err
		}
		w.dev, w.name = dev, cfg.device
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
	return ensureLooseRPFilter(cfg.device)
}

// ensureLooseRPFilter gives the device loose reverse-path filtering, as
// the VXLAN devices have (sysctlsFor): decrypted VXLAN arrives on it from
// an underlay address routed through another interface, which strict
// filtering (conf.all.rp_filter=1) drops. The filtering in effect is
// compared, and written only when it does not serve.
func ensureLooseRPFilter(dev string) error {
	want := Sysctl{Key: "net.ipv4.conf." + dev + ".rp_filter", Value: "2", Accept: "0", Dev: dev}
	read := func(key string) string {
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	if want.ServedBy(maxRPFilter(read(want.Key), read(rpFilterAll))) {
		return nil
	}
	if err := os.WriteFile("/proc/sys/"+want.Path(), []byte(want.Value), 0o644); err != nil {
		return fmt.Errorf("set sysctl %s: %w", want, err)
	}
	return nil
}

// addPeers sets the wanted peers the device does not hold as wanted (read
// from the device on every pass: a restarted agent, or a peer changed from
// outside, is repaired).
func (w *WireGuard) addPeers(cfg *wgConfig) error {
	have, err := w.dev.peers()
	if err != nil {
		return fmt.Errorf("WireGuard device %s: read peers: %w", cfg.device, err)
	}
	up, _ := peerChanges(have, cfg.peers)
	if len(up) == 0 {
		return nil
	}
	if err := w.dev.setPeers(nil, up); err != nil {
		return fmt.Errorf("WireGuard device %s: set peers: %w", cfg.device, err)
	}
	return nil
}

// removePeers removes the peers the device holds that cfg does not want.
func (w *WireGuard) removePeers(cfg *wgConfig) error {
	have, err := w.dev.peers()
	if err != nil {
		return fmt.Errorf("WireGuard device %s: read peers: %w", cfg.device, err)
	}
	if _, gone := peerChanges(have, cfg.peers); len(gone) > 0 {
		if err := w.dev.setPeers(gone, nil); err != nil {
			return fmt.Errorf("WireGuard device %s: remove peers: %w", cfg.device, err)
		}
	}
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

// heldWireGuardRoutes are the agent's own routes (protocol RouteProtocol)
// in its table; routes of any other owner there are never touched.
func heldWireGuardRoutes() ([]netlink.Route, error) {
	held, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: WireGuardTable, Protocol: RouteProtocol}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("list table %d: %w", WireGuardTable, err)
	}
	return held, nil
}

func asTableRoute(h netlink.Route) (tableRoute, bool) {
	if h.Dst == nil {
		return tableRoute{}, false
	}
	a, ok := netip.AddrFromSlice(h.Dst.IP)
	if !ok {
		return tableRoute{}, false
	}
	ones, _ := h.Dst.Mask.Size()
	r := tableRoute{dst: netip.PrefixFrom(a.Unmap(), ones), blackhole: h.Type == unix.RTN_BLACKHOLE}
	if !r.blackhole {
		r.dev = h.LinkIndex
	}
	return r, true
}

// syncWireGuardRoutes adds the routes of cfg the agent's table lacks (dev:
// the device's link index, 0 for blackholes only) and, with remove, deletes
// the agent's routes there that cfg does not want. Routes held as wanted
// are not written.
func syncWireGuardRoutes(cfg *wgConfig, dev int, remove bool) error {
	return syncTableRoutes(wireGuardRoutes(cfg, dev), remove)
}

// syncTableRoutes adds the wanted routes the agent's table lacks and, with
// remove, deletes the agent's routes there that are not wanted.
func syncTableRoutes(want []tableRoute, remove bool) error {
	held, err := heldWireGuardRoutes()
	if err != nil {
		return err
	}
	var have []tableRoute
	byRoute := map[tableRoute]netlink.Route{}
	for _, h := range held {
		if r, ok := asTableRoute(h); ok {
			have, byRoute[r] = append(have, r), h
		}
	}
	if !remove {
		// Before Set: the device routes already held stay wanted, whatever
		// the device now is (Settle deletes them once Set is through).
		for _, r := range have {
			if !r.blackhole {
				want = append(want, r)
			}
		}
	}
	add, del := routeChanges(have, want)
	var errs []error
	for _, r := range add {
		dst := &net.IPNet{IP: r.dst.Addr().AsSlice(), Mask: net.CIDRMask(r.dst.Bits(), r.dst.Addr().BitLen())}
		nr := &netlink.Route{Dst: dst, Table: WireGuardTable, Protocol: RouteProtocol}
		if r.blackhole {
			nr.Type, nr.Priority = unix.RTN_BLACKHOLE, wireGuardBlackholeMetric
		} else {
			nr.LinkIndex, nr.Scope = r.dev, netlink.SCOPE_LINK
		}
		if err := netlink.RouteReplace(nr); err != nil {
			errs = append(errs, fmt.Errorf("route %s (blackhole %v) table %d: %w", r.dst, r.blackhole, WireGuardTable, err))
		}
	}
	if remove {
		for _, r := range del {
			h := byRoute[r]
			if err := netlink.RouteDel(&h); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("delete route %s table %d: %w", r.dst, WireGuardTable, err))
			}
		}
	}
	return errors.Join(errs...)
}

// wireGuardRules are the agent's policy rules for cfg: UDP to each
// cross-cluster VXLAN port looks up the agent's table first. They carry
// the agent's protocol, so that only they are ever deleted.
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
		r.Protocol = RouteProtocol
		out = append(out, *r)
	}
	return out
}

// ownRule says whether a rule at the agent's priority is the agent's: its
// protocol, or (left by the release before the protocol tag) no protocol
// and a lookup of the agent's table for UDP.
func ownRule(h netlink.Rule) bool {
	return h.Protocol == RouteProtocol || (h.Protocol == 0 && h.Table == WireGuardTable && h.IPProto == unix.IPPROTO_UDP)
}

// addWireGuardRules adds the rules of cfg that are missing; it deletes
// none.
func addWireGuardRules(cfg *wgConfig) error { return ruleSync(cfg, false) }

// syncWireGuardRules makes the agent's rules at its priority exactly those
// of cfg (nil: none). Rules of other owners are never touched.
func syncWireGuardRules(cfg *wgConfig) error { return ruleSync(cfg, true) }

func ruleSync(cfg *wgConfig, remove bool) error {
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
			if !ownRule(h) {
				continue
			}
			keep := false
			for i, r := range want {
				if r.Family == fam && h.Table == r.Table && h.IPProto == r.IPProto && h.Dport != nil && *h.Dport == *r.Dport && !matched[i] {
					matched[i], keep = true, true
					break
				}
			}
			if !keep && remove {
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

// TeardownWireGuard removes the agent's policy rules, its routes in its
// table and a WireGuard device left behind: the default one, the named
// ones (the device a config had), and their rotation devices.
func TeardownWireGuard(devices ...string) error {
	errs := []error{syncWireGuardRules(nil)}
	held, err := heldWireGuardRoutes()
	if err != nil {
		errs = append(errs, err)
	}
	for _, h := range held {
		h := h
		if err := netlink.RouteDel(&h); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route table %d: %w", WireGuardTable, err))
		}
	}
	for _, name := range teardownDevices(devices...) {
		if l, err := netlink.LinkByName(name); err == nil && (l.Type() == "tuntap" || l.Type() == "wireguard") {
			errs = append(errs, netlink.LinkDel(l))
		}
	}
	return errors.Join(errs...)
}

// teardownDevices are the devices TeardownWireGuard removes: the default
// WireGuard device, the named ones (those the agent may own), each with
// its rotation device, once each. It is pure.
func teardownDevices(names ...string) []string {
	var out []string
	for _, n := range append([]string{v1alpha1.DeviceWireGuard}, names...) {
		if !wgDeviceName.MatchString(n) {
			continue
		}
		for _, d := range []string{n, rotationDevice(n)} {
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	return out
}
