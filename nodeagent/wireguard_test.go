package nodeagent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

const (
	testKey1 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="
	testKey2 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI="
)

func wgSpec(peers ...v1alpha1.WireGuardPeer) *v1alpha1.NodeConfigSpec {
	return &v1alpha1.NodeConfigSpec{
		Devices: []v1alpha1.Device{{Name: v1alpha1.DeviceBridge, VNI: 54, Port: 4876, MAC: "02:00:00:00:00:01", UnderlayIP: "192.168.0.11", Addresses: []string{"220.168.0.11/8"}}},
		FDB: []v1alpha1.FDBEntry{
			{MAC: "02:00:00:00:00:02", Dst: "192.168.0.21", Device: v1alpha1.DeviceBridge},
			{MAC: "02:00:00:00:00:03", Dst: "192.168.0.31", Device: v1alpha1.DeviceBridge},
		},
		WireGuard: &v1alpha1.WireGuardSpec{Device: v1alpha1.DeviceWireGuard, Port: 51871, FirewallMark: 0x4b57, Peers: peers},
	}
}

// TestWireGuardConfig: what the agent refuses, and what it makes of a good
// spec (peers, allowed host prefixes, the ports its rule selects).
func TestWireGuardConfig(t *testing.T) {
	good := v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey1, Endpoint: "192.168.0.21:51871", AllowedIPs: []string{"192.168.0.21/32"}}
	for _, c := range []struct {
		name string
		peer v1alpha1.WireGuardPeer
		want string // a refusal's text, or "" for accepted
	}{
		{"a good peer", good, ""},
		{"a wide allowed range", v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey1, Endpoint: "192.168.0.21:51871", AllowedIPs: []string{"0.0.0.0/0"}}, "not a host prefix"},
		{"a bad key", v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: "short", Endpoint: "192.168.0.21:51871", AllowedIPs: []string{"192.168.0.21/32"}}, "not a base64 key"},
		{"no port", v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey1, Endpoint: "192.168.0.21", AllowedIPs: []string{"192.168.0.21/32"}}, "not ip:port"},
		{"no allowed IPs", v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey1, Endpoint: "192.168.0.21:51871"}, "allowedIPs: empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := wgSpec(c.peer)
			cfg, err := wireGuardConfig(spec)
			verr := Validate(spec)
			if c.want == "" {
				if err != nil || verr != nil {
					t.Fatalf("refused: %v / %v", err, verr)
				}
				if len(cfg.peers) != 1 || cfg.ports[4] != 4876 || cfg.device != v1alpha1.DeviceWireGuard {
					t.Errorf("config %+v", cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || verr == nil || !strings.Contains(verr.Error(), c.want) {
				t.Errorf("want a refusal with %q, got %v / %v", c.want, err, verr)
			}
		})
	}
	if cfg, err := wireGuardConfig(&v1alpha1.NodeConfigSpec{}); cfg != nil || err != nil {
		t.Errorf("no spec.wireGuard: %v %v", cfg, err)
	}
}

// TestWireGuardDesired: on a node with a WireGuard device, VXLAN from an
// encrypted peer is accepted only through the device, from a clear peer as
// before; the cross-cluster device leaves room for WireGuard's header; and
// the table holds a device route and a blackhole per peer.
func TestWireGuardDesired(t *testing.T) {
	spec := wgSpec(v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey1, Endpoint: "192.168.0.21:51871", AllowedIPs: []string{"192.168.0.21/32"}})
	s := Desired(spec)
	var input []string
	for _, c := range s.Chains {
		if c.Key() == "ipv4/filter/"+ChainInput {
			input = c.Rules
		}
	}
	want := []string{
		"-s 192.168.0.21/32 -i vx-wg -p udp -m udp --dport 4876 -j RETURN",
		"-s 192.168.0.31/32 -p udp -m udp --dport 4876 -j RETURN",
		"-p udp -m udp --dport 4876 -j DROP",
	}
	if strings.Join(input, "\n") != strings.Join(want, "\n") {
		t.Errorf("KOSMOS-INPUT:\n%s\nwant\n%s", strings.Join(input, "\n"), strings.Join(want, "\n"))
	}
	if l := s.Links[0]; l.Overhead != v1alpha1.WireGuardOverheadBytes || l.MTU != 0 {
		t.Errorf("link %+v: want overhead %d on a derived MTU", l, v1alpha1.WireGuardOverheadBytes)
	}
	spec.Devices[0].MTU = 1450
	if l := Desired(spec).Links[0]; l.MTU != 1450-v1alpha1.WireGuardOverheadBytes {
		t.Errorf("explicit MTU 1450 → %d, want %d", l.MTU, 1450-v1alpha1.WireGuardOverheadBytes)
	}
	cfg, err := wireGuardConfig(spec)
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, r := range wireGuardRoutes(cfg) {
		routes = append(routes, r.dst.String()+map[bool]string{true: " blackhole", false: " dev"}[r.blackhole])
	}
	if got := strings.Join(routes, ","); got != "192.168.0.21/32 dev,192.168.0.21/32 blackhole" {
		t.Errorf("table routes %s", got)
	}
}

// TestUAPIPeers: peers that stay are set in place (their sessions kept),
// others removed.
func TestUAPIPeers(t *testing.T) {
	spec := wgSpec(v1alpha1.WireGuardPeer{Name: "b/b1", PublicKey: testKey1, Endpoint: "192.168.0.21:51871", AllowedIPs: []string{"192.168.0.21/32"}})
	cfg, err := wireGuardConfig(spec)
	if err != nil {
		t.Fatal(err)
	}
	gone, _ := wireGuardConfig(wgSpec(v1alpha1.WireGuardPeer{Name: "c/c1", PublicKey: testKey2, Endpoint: "192.168.0.31:51871", AllowedIPs: []string{"192.168.0.31/32"}}))
	have := map[[32]byte]bool{cfg.peers[0].key: true, gone.peers[0].key: true}
	got := uapiPeers(have, cfg.peers)
	want := "public_key=" + strings.Repeat("00", 31) + "01\nendpoint=192.168.0.21:51871\npersistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=192.168.0.21/32\n" +
		"public_key=" + strings.Repeat("00", 31) + "02\nremove=true\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestWireGuardKey: made once with mode 0600, the same on the next start,
// refused when others may read it; String never shows the private key.
func TestWireGuardKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	k1, err := LoadOrCreateWireGuardKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, WireGuardKeyFile)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v: want mode 0600", fi.Mode(), err)
	}
	k2, err := LoadOrCreateWireGuardKey(dir)
	if err != nil || k2.PublicKey() != k1.PublicKey() || len(k1.PublicKey()) != v1alpha1.WireGuardPublicKeyLength {
		t.Fatalf("second start: %v, %s vs %s", err, k2.PublicKey(), k1.PublicKey())
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(k1.String(), strings.TrimSpace(string(data))) {
		t.Error("String prints the private key")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateWireGuardKey(dir); err == nil || !strings.Contains(err.Error(), "others may read it") {
		t.Errorf("a world-readable key: %v", err)
	}
}
