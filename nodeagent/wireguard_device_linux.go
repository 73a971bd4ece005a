package nodeagent

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// wgDevice is a WireGuard device, kernel or userspace. Not safe for
// concurrent use (WireGuard holds its lock).
type wgDevice interface {
	// path is kernel or userspace.
	path() string
	setKey(*WireGuardKey) error
	// setPeers takes the device from the peers it holds (have) to want:
	// wanted ones set in place, others removed.
	setPeers(have map[[32]byte]bool, want []wgPeer) error
	// peers gives the peers the device holds, by key, as peerState.
	peers() (map[[32]byte]string, error)
	// handshakes gives each peer's last handshake (Unix seconds; 0: none).
	handshakes() (map[string]int64, error)
	// handshakeTimes gives each peer's last handshake, by key (zero:
	// none), to the nanosecond.
	handshakeTimes() (map[[32]byte]time.Time, error)
	close()
}

// openWireGuardDevice makes the device: the kernel's when the kernel can
// (a kernel device of that name left by an earlier agent is reused), else
// wireguard-go over a TUN device (a TUN of that name left behind is
// removed: it died with its agent). A link of that name of any other kind
// is not Kosmos's, and is refused.
func openWireGuardDevice(cfg *wgConfig, mtu int, key *WireGuardKey) (wgDevice, error) {
	if l, err := netlink.LinkByName(cfg.device); err == nil {
		switch l.Type() {
		case "wireguard":
			return openKernelDevice(cfg, key)
		case "tuntap":
			if err := netlink.LinkDel(l); err != nil {
				return nil, fmt.Errorf("WireGuard device %s: remove the stale TUN: %w", cfg.device, err)
			}
		default:
			return nil, fmt.Errorf("WireGuard device %s: a %s link of that name exists; Kosmos does not take it", cfg.device, l.Type())
		}
	}
	err := netlink.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: cfg.device, MTU: mtu}})
	if err == nil {
		return openKernelDevice(cfg, key)
	}
	// No WireGuard in this kernel (the module is missing: the kernel does
	// not know the link kind): userspace.
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOTSUP) && !strings.Contains(err.Error(), "not supported") {
		return nil, fmt.Errorf("WireGuard device %s: create the kernel device: %w", cfg.device, err)
	}
	return openUserspaceDevice(cfg, mtu, key)
}

// kernelDevice is the kernel's WireGuard, configured through wgctrl
// (generic netlink). It outlives the agent.
type kernelDevice struct {
	name string
	c    *wgctrl.Client
}

func openKernelDevice(cfg *wgConfig, key *WireGuardKey) (wgDevice, error) {
	c, err := wgctrl.New()
	if err != nil {
		return nil, fmt.Errorf("WireGuard device %s: wgctrl: %w", cfg.device, err)
	}
	d := &kernelDevice{name: cfg.device, c: c}
	priv := wgtypes.Key(key.private)
	port, mark := cfg.port, cfg.mark
	if err := c.ConfigureDevice(cfg.device, wgtypes.Config{PrivateKey: &priv, ListenPort: &port, FirewallMark: &mark}); err != nil {
		c.Close()
		return nil, fmt.Errorf("WireGuard device %s: configure: %w", cfg.device, err)
	}
	return d, nil
}

func (d *kernelDevice) path() string { return v1alpha1.WireGuardPathKernel }

func (d *kernelDevice) setKey(k *WireGuardKey) error {
	priv := wgtypes.Key(k.private)
	return d.c.ConfigureDevice(d.name, wgtypes.Config{PrivateKey: &priv})
}

func (d *kernelDevice) setPeers(have map[[32]byte]bool, want []wgPeer) error {
	keepalive := wireGuardKeepalive * time.Second
	var peers []wgtypes.PeerConfig
	keep := map[[32]byte]bool{}
	for _, p := range want {
		keep[p.key] = true
		pc := wgtypes.PeerConfig{PublicKey: wgtypes.Key(p.key), Endpoint: net.UDPAddrFromAddrPort(p.endpoint),
			PersistentKeepaliveInterval: &keepalive, ReplaceAllowedIPs: true}
		for _, a := range p.allowed {
			pc.AllowedIPs = append(pc.AllowedIPs, net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())})
		}
		peers = append(peers, pc)
	}
	for k := range have {
		if !keep[k] {
			peers = append(peers, wgtypes.PeerConfig{PublicKey: wgtypes.Key(k), Remove: true})
		}
	}
	return d.c.ConfigureDevice(d.name, wgtypes.Config{Peers: peers})
}

func (d *kernelDevice) peers() (map[[32]byte]string, error) {
	dev, err := d.c.Device(d.name)
	if err != nil {
		return nil, err
	}
	out := map[[32]byte]string{}
	for _, p := range dev.Peers {
		var ep netip.AddrPort
		if p.Endpoint != nil {
			ep = p.Endpoint.AddrPort()
			ep = netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())
		}
		var allowed []netip.Prefix
		for _, a := range p.AllowedIPs {
			if ad, ok := netip.AddrFromSlice(a.IP); ok {
				ones, _ := a.Mask.Size()
				allowed = append(allowed, netip.PrefixFrom(ad.Unmap(), ones))
			}
		}
		out[[32]byte(p.PublicKey)] = peerState(ep, int(p.PersistentKeepaliveInterval/time.Second), allowed)
	}
	return out, nil
}

func (d *kernelDevice) handshakes() (map[string]int64, error) {
	dev, err := d.c.Device(d.name)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, p := range dev.Peers {
		var t int64
		if !p.LastHandshakeTime.IsZero() {
			t = p.LastHandshakeTime.Unix()
		}
		out[hex.EncodeToString(p.PublicKey[:])] = t
	}
	return out, nil
}

func (d *kernelDevice) handshakeTimes() (map[[32]byte]time.Time, error) {
	dev, err := d.c.Device(d.name)
	if err != nil {
		return nil, err
	}
	out := map[[32]byte]time.Time{}
	for _, p := range dev.Peers {
		t := p.LastHandshakeTime
		if t.Unix() <= 0 {
			t = time.Time{}
		}
		out[[32]byte(p.PublicKey)] = t
	}
	return out, nil
}

// close leaves the kernel device in place: it keeps the tunnels up while
// the agent restarts.
func (d *kernelDevice) close() { d.c.Close() }

// userspaceDevice is wireguard-go over a TUN device, inside the agent.
type userspaceDevice struct {
	name string
	dev  *device.Device
}

func openUserspaceDevice(cfg *wgConfig, mtu int, key *WireGuardKey) (wgDevice, error) {
	t, err := tun.CreateTUN(cfg.device, mtu)
	if err != nil {
		return nil, fmt.Errorf("WireGuard device %s: the kernel has no WireGuard and no TUN device could be made: %w", cfg.device, err)
	}
	dev := device.NewDevice(t, conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
	base := fmt.Sprintf("private_key=%s\nlisten_port=%d\nfwmark=%d\n", hex.EncodeToString(key.private[:]), cfg.port, cfg.mark)
	if err := dev.IpcSet(base); err != nil {
		dev.Close()
		return nil, fmt.Errorf("WireGuard device %s: configure: %w", cfg.device, err)
	}
	if err := dev.Up(); err != nil {
		dev.Close()
		return nil, fmt.Errorf("WireGuard device %s: up: %w", cfg.device, err)
	}
	return &userspaceDevice{name: cfg.device, dev: dev}, nil
}

func (d *userspaceDevice) path() string { return v1alpha1.WireGuardPathUserspace }

func (d *userspaceDevice) setKey(k *WireGuardKey) error {
	return d.dev.IpcSet("private_key=" + hex.EncodeToString(k.private[:]) + "\n")
}

func (d *userspaceDevice) setPeers(have map[[32]byte]bool, want []wgPeer) error {
	return d.dev.IpcSet(uapiPeers(have, want))
}

func (d *userspaceDevice) peers() (map[[32]byte]string, error) {
	text, err := d.dev.IpcGet()
	if err != nil {
		return nil, err
	}
	return parseUAPIPeers(text), nil
}

func (d *userspaceDevice) handshakes() (map[string]int64, error) {
	text, err := d.dev.IpcGet()
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var cur string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "public_key":
			cur, out[v] = v, 0
		case "last_handshake_time_sec":
			var t int64
			fmt.Sscan(v, &t)
			out[cur] = t
		}
	}
	return out, nil
}

func (d *userspaceDevice) handshakeTimes() (map[[32]byte]time.Time, error) {
	text, err := d.dev.IpcGet()
	if err != nil {
		return nil, err
	}
	return parseUAPIHandshakes(text), nil
}

func (d *userspaceDevice) close() { d.dev.Close() }
