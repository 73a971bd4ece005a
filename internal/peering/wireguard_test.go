package peering

import (
	"strings"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

const (
	keyA1 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="
	keyG1 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI="
)

func withKey(e v1alpha1.PeerEndpoint, key string) v1alpha1.PeerEndpoint {
	e.WireGuard = &v1alpha1.PeerWireGuard{PublicKey: key, Port: 51871}
	return e
}

func asks(p v1alpha1.ClusterPeers) v1alpha1.ClusterPeers {
	p.Spec.Encryption = v1alpha1.EncryptionWireGuard
	return p
}

// wgText renders the WireGuard peers and the FDB entries (one per endpoint
// tunnelled to) of a derived spec.
func wgText(s v1alpha1.NodeConfigSpec) string {
	var b strings.Builder
	if s.WireGuard != nil {
		for _, p := range s.WireGuard.Peers {
			b.WriteString("peer " + p.Name + " " + p.PublicKey[len(p.PublicKey)-4:] + " " + p.Endpoint + " " + strings.Join(p.AllowedIPs, ",") + "\n")
		}
	}
	for _, f := range s.FDB {
		b.WriteString("fdb " + f.Dst + "\n")
	}
	return b.String()
}

func TestWireGuardPeers(t *testing.T) {
	a1 := ep("a1", "192.168.2.11", "220.168.2.11", "02:00:00:00:00:a1", "10.20.1.0/24")
	a2 := ep("a2", "192.168.2.12", "220.168.2.12", "02:00:00:00:00:a2", "10.20.2.0/24")
	g1 := ep("g1", "192.168.3.11", "220.168.3.11", "02:00:00:00:00:b1")
	g2 := ep("g2", "192.168.3.12", "220.168.3.12", "02:00:00:00:00:b2")
	dual := withKey(ep("d1", "192.168.4.11", "220.168.4.11", "02:00:00:00:00:d1"), keyA1)
	dual.Tunnels = append(dual.Tunnels, v1alpha1.PeerTunnel{Device: v1alpha1.DeviceBridge6, UnderlayIP: "fd00::4:11", Address: "9470::4:11", MAC: "02:00:00:00:06:d1"})
	node := func(wg *v1alpha1.WireGuardSpec, devs ...string) *v1alpha1.NodeConfigSpec {
		s := &v1alpha1.NodeConfigSpec{Peers: &v1alpha1.PeeringSpec{Cluster: "own"}, WireGuard: wg}
		for _, d := range devs {
			s.Peers.Paths = append(s.Peers.Paths, v1alpha1.PeerPath{Device: d})
		}
		return s
	}
	wgAll := &v1alpha1.WireGuardSpec{Device: v1alpha1.DeviceWireGuard, Port: 51871, FirewallMark: 1, EncryptAll: true}
	wgSome := &v1alpha1.WireGuardSpec{Device: v1alpha1.DeviceWireGuard, Port: 51871, FirewallMark: 1}
	p2p := func(eps ...v1alpha1.PeerEndpoint) v1alpha1.ClusterPeers {
		return peers("a.0-of-1", "a", v1alpha1.ModeP2P, nil, eps...)
	}
	for _, c := range []struct {
		name  string
		spec  *v1alpha1.NodeConfigSpec
		peers []v1alpha1.ClusterPeers
		want  string
	}{
		{"no encryption anywhere: clear tunnels, no peers", node(nil, v1alpha1.DeviceBridge),
			[]v1alpha1.ClusterPeers{p2p(withKey(a1, keyA1), a2)}, "fdb 192.168.2.11\nfdb 192.168.2.12\n"},
		{"own cluster asks: the endpoint with a key is a peer, the one without is left out", node(wgAll, v1alpha1.DeviceBridge),
			[]v1alpha1.ClusterPeers{p2p(withKey(a1, keyA1), a2)},
			"peer a/a1 AAE= 192.168.2.11:51871 192.168.2.11/32\nfdb 192.168.2.11\n"},
		{"remote asks: encrypted though the own cluster does not", node(wgSome, v1alpha1.DeviceBridge),
			[]v1alpha1.ClusterPeers{asks(p2p(withKey(a1, keyA1), a2))},
			"peer a/a1 AAE= 192.168.2.11:51871 192.168.2.11/32\nfdb 192.168.2.11\n"},
		{"neither asks: clear even with keys", node(wgSome, v1alpha1.DeviceBridge),
			[]v1alpha1.ClusterPeers{p2p(withKey(a1, keyA1), a2)}, "fdb 192.168.2.11\nfdb 192.168.2.12\n"},
		{"remote asks, node has no WireGuard device: nothing, never clear", node(nil, v1alpha1.DeviceBridge),
			[]v1alpha1.ClusterPeers{asks(p2p(withKey(a1, keyA1), a2))}, ""},
		{"gateway cluster: every candidate is kept hot (gateway HA)", node(wgAll, v1alpha1.DeviceBridge),
			[]v1alpha1.ClusterPeers{peers("g.0-of-1", "g", v1alpha1.ModeGateway, []string{"g1", "g2"}, withKey(g1, keyG1), withKey(g2, keyA1))},
			"peer g/g1 AAI= 192.168.3.11:51871 192.168.3.11/32\npeer g/g2 AAE= 192.168.3.12:51871 192.168.3.12/32\nfdb 192.168.3.11\nfdb 192.168.3.12\n"},
		{"gateway cluster: a standby without a key gets nothing", node(wgAll, v1alpha1.DeviceBridge),
			[]v1alpha1.ClusterPeers{peers("g.0-of-1", "g", v1alpha1.ModeGateway, []string{"g1", "g2"}, withKey(g1, keyG1), g2)},
			"peer g/g1 AAI= 192.168.3.11:51871 192.168.3.11/32\nfdb 192.168.3.11\n"},
		{"shards disagree: the cluster is encrypted when any shard asks", node(wgSome, v1alpha1.DeviceBridge),
			[]v1alpha1.ClusterPeers{p2p(a2), asks(p2p(withKey(a1, keyA1)))},
			"peer a/a1 AAE= 192.168.2.11:51871 192.168.2.11/32\nfdb 192.168.2.11\n"},
		{"dual stack: one peer, both host prefixes, the IPv4 endpoint", node(wgAll, v1alpha1.DeviceBridge6, v1alpha1.DeviceBridge),
			[]v1alpha1.ClusterPeers{p2p(dual)},
			"peer a/d1 AAE= 192.168.4.11:51871 192.168.4.11/32,fd00::4:11/128\nfdb 192.168.4.11\nfdb fd00::4:11\n"},
		{"a path behind a gateway has no peers", &v1alpha1.NodeConfigSpec{WireGuard: wgAll, Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{{Device: v1alpha1.DeviceLocal, Via: "210.0.0.1"}}}},
			[]v1alpha1.ClusterPeers{p2p(withKey(a1, keyA1))}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Derive(c.spec, c.peers)
			if err != nil {
				t.Fatal(err)
			}
			if s := wgText(got); s != c.want {
				t.Errorf("got\n%s\nwant\n%s", s, c.want)
			}
			direct, err := WireGuardPeers(c.spec, c.peers)
			if err != nil {
				t.Fatal(err)
			}
			var n int
			if got.WireGuard != nil {
				n = len(got.WireGuard.Peers)
			}
			if len(direct) != n {
				t.Errorf("WireGuardPeers gave %d peers, Derive %d", len(direct), n)
			}
			if c.spec.WireGuard != nil && len(c.spec.WireGuard.Peers) != 0 {
				t.Error("Derive modified its input")
			}
		})
	}
}

// TestDeriveWithoutWireGuard: for an agent of an earlier release (no
// WireGuard, whatever its spec says) no entry to an encrypted pair's
// endpoint is derived, key or not: it would send to it in clear. Clear
// pairs are kept. Before the fix the legacy configs were derived with the
// device, so they held the encrypted peers' FDB entries.
func TestDeriveWithoutWireGuard(t *testing.T) {
	a1 := withKey(ep("a1", "192.168.2.11", "220.168.2.11", "02:00:00:00:00:a1", "10.20.1.0/24"), keyA1)
	b1 := withKey(ep("b1", "192.168.5.11", "220.168.5.11", "02:00:00:00:00:c1", "10.50.1.0/24"), keyG1)
	node := func(wg *v1alpha1.WireGuardSpec) *v1alpha1.NodeConfigSpec {
		return &v1alpha1.NodeConfigSpec{Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{{Device: v1alpha1.DeviceBridge}}}, WireGuard: wg}
	}
	some := &v1alpha1.WireGuardSpec{Device: v1alpha1.DeviceWireGuard, Port: 51871, FirewallMark: 1}
	all := &v1alpha1.WireGuardSpec{Device: v1alpha1.DeviceWireGuard, Port: 51871, FirewallMark: 1, EncryptAll: true}
	asking := asks(peers("a.0-of-1", "a", v1alpha1.ModeP2P, nil, a1))
	clear := peers("b.0-of-1", "b", v1alpha1.ModeP2P, nil, b1)
	for _, c := range []struct {
		name string
		spec *v1alpha1.NodeConfigSpec
		want string
	}{
		{"remote asks: only the clear pair", node(some), "fdb 192.168.5.11\n"},
		{"own cluster asks: nothing", node(all), ""},
		{"no WireGuard in the spec: only the clear pair", node(nil), "fdb 192.168.5.11\n"},
	} {
		got, err := DeriveWithoutWireGuard(c.spec, []v1alpha1.ClusterPeers{asking, clear})
		if err != nil {
			t.Fatal(err)
		}
		if s := wgText(got); s != c.want {
			t.Errorf("%s: got\n%s\nwant\n%s", c.name, s, c.want)
		}
	}
}

// TestShardsDisagreeOnEncryption: a cluster is encrypted when any of its
// shards says so (one shard written before the change must not open a
// clear path). Before the fix the first shard merged decided.
func TestShardsDisagreeOnEncryption(t *testing.T) {
	a1 := ep("a1", "192.168.2.11", "220.168.2.11", "02:00:00:00:00:a1", "10.20.1.0/24")
	a2 := withKey(ep("a2", "192.168.2.12", "220.168.2.12", "02:00:00:00:00:a2", "10.20.2.0/24"), keyA1)
	spec := &v1alpha1.NodeConfigSpec{Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{{Device: v1alpha1.DeviceBridge}}},
		WireGuard: &v1alpha1.WireGuardSpec{Device: v1alpha1.DeviceWireGuard, Port: 51871, FirewallMark: 1}}
	shards := []v1alpha1.ClusterPeers{peers("a.0-of-2", "a", v1alpha1.ModeP2P, nil, a1), asks(peers("a.1-of-2", "a", v1alpha1.ModeP2P, nil, a2))}
	got, err := Derive(spec, shards)
	if err != nil {
		t.Fatal(err)
	}
	if s := wgText(got); s != "peer a/a2 AAE= 192.168.2.12:51871 192.168.2.12/32\nfdb 192.168.2.12\n" {
		t.Errorf("got\n%s", s)
	}
}
