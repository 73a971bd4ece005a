package nodeagent

// WireGuard between clusters.
//
// The data path keeps VXLAN and its FDB as they are and wraps the VXLAN
// packets to encrypted peers in WireGuard. A policy rule of the agent's own
// (priority WireGuardRulePriority) sends UDP to the cross-cluster VXLAN
// ports into the agent's own table (WireGuardTable); that table holds, for
// each encrypted peer's underlay address, a host route through the
// WireGuard device and, behind it, a blackhole. The device's peer for that
// node allows exactly that host prefix (never 0.0.0.0/0). So VXLAN to an
// encrypted peer leaves inside WireGuard; the receiver decrypts it and its
// VXLAN device sees the packet from the peer's underlay address, arriving
// on the WireGuard device. KOSMOS-INPUT accepts VXLAN from an encrypted
// peer only through that device (see inputRules); clear VXLAN from it is
// dropped. When the device is gone (the agent stopped, its userspace device
// with it), the blackhole stays: VXLAN to encrypted peers is not sent at
// all rather than sent in clear.
//
// The private key is made on first start in the agent's state directory
// (a 0600 file) and never leaves it; the public key is reported in the
// NodeConfig status. Rotation: `kosmos agent --rotate-wireguard-key` writes
// the next key beside it; the running agent hands over to it in two phases
// through a second device, losing nothing (wireguard_rotate.go). (Until
// then a rotation swapped the key at once, and the tunnel stalled for one
// reconcile round-trip until the peers had the new key.)
//
// Path: the kernel's WireGuard (netlink + wgctrl) where the kernel has it,
// else wireguard-go in process over a TUN device (status.wireGuard.path).

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/curve25519"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// The agent's own routing table and rule priority for WireGuard.
const (
	WireGuardTable        = 4876
	WireGuardRulePriority = 4876
	// wireGuardBlackholeMetric is the metric of the fallback blackhole
	// behind each device route.
	wireGuardBlackholeMetric = 4096
	// wireGuardKeepalive is the peers' persistent keepalive, in seconds.
	wireGuardKeepalive = 25
	// WireGuardKeyFile is the private key's file in the state directory.
	WireGuardKeyFile = "wireguard.key"
)

// WireGuardKey is a node's key pair. String never prints the private key.
type WireGuardKey struct {
	private, public [32]byte
}

// PublicKey is the public key, base64.
func (k *WireGuardKey) PublicKey() string { return base64.StdEncoding.EncodeToString(k.public[:]) }

func (k *WireGuardKey) String() string { return "WireGuardKey(public " + k.PublicKey() + ")" }

func keyFromPrivate(priv [32]byte) (*WireGuardKey, error) {
	k := &WireGuardKey{private: priv}
	pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("derive the WireGuard public key: %w", err)
	}
	copy(k.public[:], pub)
	return k, nil
}

// LoadOrCreateWireGuardKey reads the node's private key from dir, or makes
// one (dir 0700, file 0600) when there is none. The file is opened without
// following a symbolic link and checked on the open file: a regular file
// owned by the agent's user (root) that others may not read; else it is
// refused (the key may have leaked or been planted; delete it to make a
// new one). A state directory others may write to is refused too.
func LoadOrCreateWireGuardKey(dir string) (*WireGuardKey, error) {
	k, err := loadWireGuardKeyFile(dir, WireGuardKeyFile)
	if k == nil && err == nil {
		return createWireGuardKey(dir, filepath.Join(dir, WireGuardKeyFile), false)
	}
	return k, err
}

// loadWireGuardKeyFile reads a key file of the state directory, with the
// checks LoadOrCreateWireGuardKey describes; nil and no error when there
// is none.
func loadWireGuardKeyFile(dir, name string) (*WireGuardKey, error) {
	path := filepath.Join(dir, name)
	if fi, err := os.Lstat(dir); err == nil && (!fi.IsDir() || fi.Mode().Perm()&0o022 != 0) {
		return nil, fmt.Errorf("WireGuard state directory %s: not a directory only its owner may write to (mode %v); make it 0700", dir, fi.Mode())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read WireGuard key %s (a symbolic link is refused): %w", path, err)
	}
	defer f.Close()
	if err := checkKeyFile(f); err != nil {
		return nil, fmt.Errorf("WireGuard key %s: %w; delete it (a new key is made) or fix it", path, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, fmt.Errorf("read WireGuard key %s: %w", path, err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("WireGuard key %s is not a base64 key of 32 bytes; delete it to make a new one", path)
	}
	var priv [32]byte
	copy(priv[:], raw)
	return keyFromPrivate(priv)
}

// checkKeyFile checks the open key file: regular, owned by the agent's
// user, not readable or writable by others.
func checkKeyFile(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("has mode %v: others may read it", fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("is owned by uid %d, not the agent's user (uid %d)", st.Uid, os.Geteuid())
	}
	return nil
}

func createWireGuardKey(dir, path string, exclusive bool) (*WireGuardKey, error) {
	var priv [32]byte
	if _, err := rand.Read(priv[:]); err != nil {
		return nil, fmt.Errorf("make a WireGuard key: %w", err)
	}
	// Clamp, as every WireGuard implementation does.
	priv[0] &= 248
	priv[31] = priv[31]&127 | 64
	if err := writeWireGuardKeyFile(dir, path, priv, exclusive); err != nil {
		return nil, err
	}
	return keyFromPrivate(priv)
}

// errKeyFileExists: an exclusive key file write found the file there.
var errKeyFileExists = errors.New("the file exists")

// writeWireGuardKeyFile writes a private key to path (0600, synced) through
// a temporary file: renamed over path, or, when exclusive, linked to it so
// that an existing file is never replaced (errKeyFileExists).
func writeWireGuardKeyFile(dir, path string, priv [32]byte, exclusive bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("WireGuard state directory %s: not a directory only its owner may write to; make it 0700", dir)
	}
	tmp, err := os.CreateTemp(dir, ".wireguard-key-*")
	if err != nil {
		return fmt.Errorf("write WireGuard key in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	// (err is the function's: a failed rename or link must be reported.)
	if err = tmp.Chmod(0o600); err == nil {
		_, err = tmp.WriteString(base64.StdEncoding.EncodeToString(priv[:]) + "\n")
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		switch {
		case err != nil:
		case exclusive:
			if err = os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
				err = errKeyFileExists
			}
		default:
			err = os.Rename(tmp.Name(), path)
		}
	}
	if err != nil {
		return fmt.Errorf("write WireGuard key %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// wgPeer is one peer as the device is to hold it.
type wgPeer struct {
	key      [32]byte
	endpoint netip.AddrPort
	allowed  []netip.Prefix
	// name is the peer's name (cluster/node); next is the key it rotates
	// to, when hasNext (see wireguard_rotate.go).
	name    string
	next    [32]byte
	hasNext bool
}

// dropOwnNext ignores a peer's next key that is one of the node's own
// keys (its key or its next key): the node would hold itself as a peer.
// The peer keeps its current key; its rotation waits. It is pure.
func (c *wgConfig) dropOwnNext(own ...[32]byte) {
	for i := range c.peers {
		p := &c.peers[i]
		if p.hasNext && slices.Contains(own, p.next) {
			p.next, p.hasNext = [32]byte{}, false
			c.dropped = append(c.dropped, fmt.Sprintf("wireGuard peer %s: nextPublicKey is this node's own key: ignored (its rotation waits)", p.name))
		}
	}
}

// wgConfig is the device configuration a NodeConfig asks for.
type wgConfig struct {
	device string
	port   int
	mark   int
	peers  []wgPeer
	// closed are host prefixes of peers dropped for a bad entry (a key
	// that is not one, or that another peer holds too): they get the
	// blackhole and no device route, so VXLAN to them is not sent at all
	// rather than sent in clear.
	closed []netip.Prefix
	// dropped says why each dropped peer was dropped (reported).
	dropped []string
	// ports are the cross-cluster VXLAN ports, by family (4 or 6), whose
	// traffic the policy rule sends into the agent's table.
	ports map[int]int
}

var wgDeviceName = regexp.MustCompile(`^` + v1alpha1.DevicePrefix + `[a-z0-9-]{1,12}$`)

// wireGuardConfig validates spec.wireGuard and turns it into the device
// configuration; nil when the spec asks for no device. It is pure. Allowed
// IPs must be host prefixes: the device carries the VXLAN tunnel only. A
// bad device part refuses the config; a bad peer (its key not a key or
// held by another peer too, its endpoint or allowed IPs malformed) is
// dropped alone: its host prefixes stay blackholed (fail closed for it),
// the other peers are kept.
func wireGuardConfig(spec *v1alpha1.NodeConfigSpec) (*wgConfig, error) {
	w := spec.WireGuard
	if w == nil {
		return nil, nil
	}
	var p problems
	if !wgDeviceName.MatchString(w.Device) {
		p.bad("wireGuard.device: %q is not a device the agent may own", w.Device)
	}
	if w.Port < 1 || w.Port > 65535 {
		p.bad("wireGuard.port: %d is out of range 1 to 65535", w.Port)
	}
	if w.FirewallMark <= 0 {
		p.bad("wireGuard.firewallMark: %d must be positive", w.FirewallMark)
	}
	cfg := &wgConfig{device: w.Device, port: int(w.Port), mark: int(w.FirewallMark), ports: map[int]int{}}
	holders := map[[32]byte]int{}
	nexts := map[[32]byte]int{}
	for _, pe := range w.Peers {
		if raw, err := base64.StdEncoding.DecodeString(pe.PublicKey); err == nil && len(raw) == 32 {
			holders[[32]byte(raw)]++
		}
		if raw, err := base64.StdEncoding.DecodeString(pe.NextPublicKey); pe.NextPublicKey != "" && err == nil && len(raw) == 32 {
			nexts[[32]byte(raw)]++
		}
	}
	for i, pe := range w.Peers {
		at := fmt.Sprintf("wireGuard.peers[%d] (%s)", i, pe.Name)
		wp := wgPeer{name: pe.Name}
		var bad []string
		// A next key another peer holds (as its key or its next key) is
		// ignored: the peer keeps its current key, its rotation waits.
		if raw, err := base64.StdEncoding.DecodeString(pe.NextPublicKey); pe.NextPublicKey != "" && err == nil && len(raw) == 32 && holders[[32]byte(raw)] == 0 && nexts[[32]byte(raw)] == 1 {
			wp.next, wp.hasNext = [32]byte(raw), true
		}
		raw, err := base64.StdEncoding.DecodeString(pe.PublicKey)
		if err != nil || len(raw) != 32 {
			bad = append(bad, "publicKey: not a base64 key of 32 bytes")
		} else if wp.key = [32]byte(raw); holders[wp.key] > 1 {
			bad = append(bad, "publicKey: another peer has the same key")
		}
		if wp.endpoint, err = netip.ParseAddrPort(pe.Endpoint); err != nil {
			bad = append(bad, fmt.Sprintf("endpoint: %q is not ip:port", pe.Endpoint))
		}
		if len(pe.AllowedIPs) == 0 {
			bad = append(bad, "allowedIPs: empty")
		}
		for j, a := range pe.AllowedIPs {
			pr, err := netip.ParsePrefix(a)
			if err != nil || pr.Bits() != pr.Addr().BitLen() {
				bad = append(bad, fmt.Sprintf("allowedIPs[%d]: %q is not a host prefix (/32 or /128): the device carries the tunnel only", j, a))
				continue
			}
			wp.allowed = append(wp.allowed, pr)
		}
		if len(bad) > 0 {
			cfg.closed = append(cfg.closed, wp.allowed...)
			cfg.dropped = append(cfg.dropped, fmt.Sprintf("%s dropped (VXLAN to it blackholed): %s", at, strings.Join(bad, ", ")))
			continue
		}
		cfg.peers = append(cfg.peers, wp)
	}
	for _, d := range spec.Devices {
		if d.Name != v1alpha1.DeviceBridge && d.Name != v1alpha1.DeviceBridge6 {
			continue
		}
		fam := 4
		if a, err := netip.ParseAddr(d.UnderlayIP); err == nil && !a.Is4() {
			fam = 6
		}
		cfg.ports[fam] = int(d.Port)
		if int(d.Port) == cfg.port {
			// WireGuard's own packets would match the rule and loop.
			p.bad("wireGuard.port: %d is also the VXLAN port of %s", w.Port, d.Name)
		}
	}
	if len(p) > 0 {
		return nil, fmt.Errorf("NodeConfig refused: %s", strings.Join(p, "; "))
	}
	return cfg, nil
}

// droppedError reports the peers a config dropped (nil: none).
func (c *wgConfig) droppedError() error {
	if c == nil || len(c.dropped) == 0 {
		return nil
	}
	return fmt.Errorf("WireGuard: %s", strings.Join(c.dropped, "; "))
}

// peerState is a peer as a device holds it, in a comparable form.
func peerState(endpoint netip.AddrPort, keepalive int, allowed []netip.Prefix) string {
	a := make([]string, len(allowed))
	for i, p := range allowed {
		a[i] = p.Masked().String()
	}
	slices.Sort(a)
	return fmt.Sprintf("%s keepalive %d allowed %s", endpoint, keepalive, strings.Join(a, ","))
}

// parseUAPIPeers reads the peers of a wireguard-go configuration dump
// (IpcGet), by key, as peerState. It is pure.
func parseUAPIPeers(text string) map[[32]byte]string {
	out := map[[32]byte]string{}
	type peer struct {
		ep        netip.AddrPort
		keepalive int
		allowed   []netip.Prefix
	}
	var key [32]byte
	var cur *peer
	flush := func() {
		if cur != nil {
			out[key] = peerState(cur.ep, cur.keepalive, cur.allowed)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "public_key":
			flush()
			cur = nil
			if raw, err := hex.DecodeString(v); err == nil && len(raw) == 32 {
				key, cur = [32]byte(raw), &peer{}
			}
		case "endpoint":
			if cur != nil {
				cur.ep, _ = netip.ParseAddrPort(v)
			}
		case "persistent_keepalive_interval":
			if cur != nil {
				cur.keepalive, _ = strconv.Atoi(v)
			}
		case "allowed_ip":
			if pr, err := netip.ParsePrefix(v); cur != nil && err == nil {
				cur.allowed = append(cur.allowed, pr)
			}
		}
	}
	flush()
	return out
}

// parseUAPIHandshakes reads each peer's last handshake from a wireguard-go
// configuration dump, by key (zero: none). It is pure.
func parseUAPIHandshakes(text string) map[[32]byte]time.Time {
	out := map[[32]byte]time.Time{}
	var key [32]byte
	var sec, nsec int64
	have := false
	flush := func() {
		if have {
			if sec > 0 || nsec > 0 {
				out[key] = time.Unix(sec, nsec)
			} else {
				out[key] = time.Time{}
			}
		}
	}
	for _, line := range strings.Split(text, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "public_key":
			flush()
			have, sec, nsec = false, 0, 0
			if raw, err := hex.DecodeString(v); err == nil && len(raw) == 32 {
				key, have = [32]byte(raw), true
			}
		case "last_handshake_time_sec":
			sec, _ = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			nsec, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	flush()
	return out
}

// peerChanges compares the peers a device holds (have: by key, their
// peerState) with those wanted: the wanted peers missing or different
// (set in place), and the held ones not wanted (removed, after Set). It is
// pure.
func peerChanges(have map[[32]byte]string, want []wgPeer) (upsert []wgPeer, remove map[[32]byte]bool) {
	keep := map[[32]byte]bool{}
	for _, p := range want {
		keep[p.key] = true
		if s, ok := have[p.key]; !ok || s != peerState(p.endpoint, wireGuardKeepalive, p.allowed) {
			upsert = append(upsert, p)
		}
	}
	for k := range have {
		if !keep[k] {
			if remove == nil {
				remove = map[[32]byte]bool{}
			}
			remove[k] = true
		}
	}
	return upsert, remove
}

// uapiPeers renders the peer part of a wireguard-go configuration that
// takes the device from the peers it holds (have, by public key) to want:
// every wanted peer set in place (its allowed IPs replaced), every other
// removed. Peers that stay keep their sessions. A persistent keepalive
// keeps NAT bindings open and makes a new peer (a rotated key) start its
// handshake at once instead of waiting for traffic. It is pure.
func uapiPeers(have map[[32]byte]bool, want []wgPeer) string {
	var b strings.Builder
	keep := map[[32]byte]bool{}
	for _, p := range want {
		keep[p.key] = true
		fmt.Fprintf(&b, "public_key=%s\nendpoint=%s\npersistent_keepalive_interval=%d\nreplace_allowed_ips=true\n", hex.EncodeToString(p.key[:]), p.endpoint, wireGuardKeepalive)
		for _, a := range p.allowed {
			fmt.Fprintf(&b, "allowed_ip=%s\n", a)
		}
	}
	var gone [][32]byte
	for k := range have {
		if !keep[k] {
			gone = append(gone, k)
		}
	}
	slices.SortFunc(gone, func(a, b [32]byte) int { return strings.Compare(string(a[:]), string(b[:])) })
	for _, k := range gone {
		fmt.Fprintf(&b, "public_key=%s\nremove=true\n", hex.EncodeToString(k[:]))
	}
	return b.String()
}

// tableRoute is a route of the agent's WireGuard table.
type tableRoute struct {
	dst       netip.Prefix
	blackhole bool
	dev       int // the device's link index (a route through it)
}

// wireGuardRoutes are the routes of the agent's table for a configuration:
// per allowed prefix, one through the device (dev, its link index, when
// there is a device: else 0) and a blackhole behind it; a dropped peer's
// prefixes get the blackhole only.
func wireGuardRoutes(cfg *wgConfig, dev int) []tableRoute {
	var out []tableRoute
	if cfg == nil {
		return nil
	}
	for _, p := range cfg.peers {
		for _, a := range p.allowed {
			out = append(out, tableRoute{dst: a, blackhole: true})
			if dev != 0 {
				out = append(out, tableRoute{dst: a, dev: dev})
			}
		}
	}
	for _, a := range cfg.closed {
		out = append(out, tableRoute{dst: a, blackhole: true})
	}
	slices.SortFunc(out, func(a, b tableRoute) int {
		if c := a.dst.Addr().Compare(b.dst.Addr()); c != 0 {
			return c
		}
		if a.blackhole == b.blackhole {
			return 0
		}
		if a.blackhole {
			return 1
		}
		return -1
	})
	return slices.Compact(out)
}

// routeChanges compares the agent's routes in its table (held) with those
// wanted: the wanted ones missing (added before Set) and the held ones not
// wanted (deleted after Set). Routes held identically are not written, so
// a pass that changes nothing emits no route event. It is pure.
func routeChanges(held, want []tableRoute) (add, del []tableRoute) {
	h := map[tableRoute]bool{}
	for _, r := range held {
		h[r] = true
	}
	w := map[tableRoute]bool{}
	for _, r := range want {
		w[r] = true
		if !h[r] {
			add = append(add, r)
		}
	}
	for _, r := range held {
		if !w[r] {
			del = append(del, r)
		}
	}
	return add, del
}

// wireGuardMTU leaves room for WireGuard's overhead on a cross-cluster
// device of a node that has a WireGuard device: an explicit MTU is lowered
// by it, a derived one (0) is derived with it.
func wireGuardMTU(spec *v1alpha1.NodeConfigSpec, l *Link) {
	if spec.WireGuard == nil || (l.Name != v1alpha1.DeviceBridge && l.Name != v1alpha1.DeviceBridge6) {
		return
	}
	l.Overhead = v1alpha1.WireGuardOverheadBytes
	if l.MTU != 0 {
		l.MTU -= v1alpha1.WireGuardOverheadBytes
	}
}

// wireGuardSources are the host prefixes of the encrypted peers (their
// allowed IPs, as iptables prints them): their VXLAN is accepted through
// the WireGuard device only.
func wireGuardSources(spec *v1alpha1.NodeConfigSpec) map[string]bool {
	out := map[string]bool{}
	if spec.WireGuard == nil {
		return out
	}
	for _, p := range spec.WireGuard.Peers {
		for _, a := range p.AllowedIPs {
			if pr, err := netip.ParsePrefix(a); err == nil {
				out[pr.Masked().String()] = true
			}
		}
	}
	return out
}
