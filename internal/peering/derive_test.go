package peering

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/schema/v1alpha1"
)

func peers(name, cluster string, mode v1alpha1.NetworkMode, gateways []string, eps ...v1alpha1.PeerEndpoint) v1alpha1.ClusterPeers {
	p := v1alpha1.ClusterPeers{Spec: v1alpha1.ClusterPeersSpec{Cluster: cluster, Mode: mode, Shards: 1, Gateways: gateways, Endpoints: eps,
		CIDRs: []string{"10.9.0.0/16", "fd09::/56"}}}
	p.Name = name
	p.Labels = map[string]string{v1alpha1.LabelTopology: "t"}
	return p
}

func ep(name, underlay, addr, mac string, cidrs ...string) v1alpha1.PeerEndpoint {
	return v1alpha1.PeerEndpoint{Name: name, CIDRs: cidrs, Tunnels: []v1alpha1.PeerTunnel{{Device: v1alpha1.DeviceBridge, UnderlayIP: underlay, Address: addr, MAC: mac}}}
}

// text renders the derived entries one per line.
func text(s v1alpha1.NodeConfigSpec) string {
	var b strings.Builder
	for _, f := range s.FDB {
		b.WriteString("fdb " + f.Device + " " + f.MAC + " " + f.Dst + "\n")
	}
	for _, n := range s.Neighbors {
		b.WriteString("neigh " + n.Device + " " + n.IP + " " + n.MAC + "\n")
	}
	for _, r := range s.Routes {
		b.WriteString("route " + r.Device + " " + r.Dst + " via " + r.Via + "\n")
	}
	return b.String()
}

func TestDerive(t *testing.T) {
	a1 := ep("a1", "192.168.2.11", "220.168.2.11", "02:00:00:00:00:a1", "10.20.1.0/24", "10.96.0.0/16")
	a2 := ep("a2", "192.168.2.12", "220.168.2.12", "02:00:00:00:00:a2", "10.20.2.0/24")
	g1 := ep("g1", "192.168.3.11", "220.168.3.11", "02:00:00:00:00:b1")
	g2 := ep("g2", "192.168.3.12", "220.168.3.12", "02:00:00:00:00:b2")
	edge := &v1alpha1.NodeConfigSpec{Peers: &v1alpha1.PeeringSpec{Cluster: "own", Topology: "t", Paths: []v1alpha1.PeerPath{{Device: v1alpha1.DeviceBridge}}}}
	behind := &v1alpha1.NodeConfigSpec{
		Routes: []v1alpha1.Route{{Dst: "10.1.0.0/16", Via: "210.0.0.1", Device: v1alpha1.DeviceLocal}},
		Peers:  &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{{Device: v1alpha1.DeviceLocal, Via: "210.0.0.1"}}},
	}
	own := peers("own.0-of-1", "own", v1alpha1.ModeP2P, nil, ep("o1", "192.168.1.1", "220.168.1.1", "02:00:00:00:00:01", "10.1.0.0/24"))
	other := peers("x.0-of-1", "x", v1alpha1.ModeP2P, nil, ep("x1", "192.168.9.1", "220.168.9.1", "02:00:00:00:00:09", "10.99.0.0/24"))
	other.Labels[v1alpha1.LabelTopology] = "another"
	for _, c := range []struct {
		name  string
		spec  *v1alpha1.NodeConfigSpec
		peers []v1alpha1.ClusterPeers
		want  string
	}{
		{"old contract: unchanged", &v1alpha1.NodeConfigSpec{Routes: []v1alpha1.Route{{Dst: "10.5.0.0/16", Via: "220.0.0.5", Device: "vx-bridge"}}},
			[]v1alpha1.ClusterPeers{peers("a.0-of-1", "a", v1alpha1.ModeP2P, nil, a1)}, "route vx-bridge 10.5.0.0/16 via 220.0.0.5\n"},
		{"P2P endpoints, own cluster and other topology ignored", edge,
			[]v1alpha1.ClusterPeers{own, other, peers("a.0-of-1", "a", v1alpha1.ModeP2P, nil, a2, a1)},
			"fdb vx-bridge 02:00:00:00:00:a1 192.168.2.11\nfdb vx-bridge 02:00:00:00:00:a2 192.168.2.12\n" +
				"neigh vx-bridge 220.168.2.11 02:00:00:00:00:a1\nneigh vx-bridge 220.168.2.12 02:00:00:00:00:a2\n" +
				"route vx-bridge 10.20.1.0/24 via 220.168.2.11\nroute vx-bridge 10.20.2.0/24 via 220.168.2.12\nroute vx-bridge 10.96.0.0/16 via 220.168.2.11\n"},
		{"shards merged, an endpoint in two shards once", edge,
			[]v1alpha1.ClusterPeers{peers("a.0-of-2", "a", v1alpha1.ModeP2P, nil, a1), peers("a.1-of-2", "a", v1alpha1.ModeP2P, nil, a2), peers("a.0-of-1", "a", v1alpha1.ModeP2P, nil, a1, a2)},
			"fdb vx-bridge 02:00:00:00:00:a1 192.168.2.11\nfdb vx-bridge 02:00:00:00:00:a2 192.168.2.12\n" +
				"neigh vx-bridge 220.168.2.11 02:00:00:00:00:a1\nneigh vx-bridge 220.168.2.12 02:00:00:00:00:a2\n" +
				"route vx-bridge 10.20.1.0/24 via 220.168.2.11\nroute vx-bridge 10.20.2.0/24 via 220.168.2.12\nroute vx-bridge 10.96.0.0/16 via 220.168.2.11\n"},
		{"Gateway cluster through its first candidate, every candidate hot, IPv4 ranges only on vx-bridge", edge,
			[]v1alpha1.ClusterPeers{peers("b.0-of-1", "b", v1alpha1.ModeGateway, []string{"g2", "g1"}, g1, g2)},
			"fdb vx-bridge 02:00:00:00:00:b1 192.168.3.11\nfdb vx-bridge 02:00:00:00:00:b2 192.168.3.12\n" +
				"neigh vx-bridge 220.168.3.11 02:00:00:00:00:b1\nneigh vx-bridge 220.168.3.12 02:00:00:00:00:b2\nroute vx-bridge 10.9.0.0/16 via 220.168.3.12\n"},
		{"Gateway cluster without a gateway: unreachable", edge,
			[]v1alpha1.ClusterPeers{peers("b.0-of-1", "b", v1alpha1.ModeGateway, nil, g1)}, ""},
		{"behind a gateway: every remote range of Via's family to it, explicit entries kept", behind,
			[]v1alpha1.ClusterPeers{own, peers("a.0-of-1", "a", v1alpha1.ModeP2P, nil, a1), peers("b.0-of-1", "b", v1alpha1.ModeGateway, []string{"g1"}, g1)},
			"route vx-local 10.1.0.0/16 via 210.0.0.1\nroute vx-local 10.9.0.0/16 via 210.0.0.1\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Derive(c.spec, Select(c.spec, c.peers))
			if err != nil {
				t.Fatal(err)
			}
			if text(got) != c.want {
				t.Errorf("got\n%s\nwant\n%s", text(got), c.want)
			}
			again, _ := Derive(c.spec, Select(c.spec, c.peers))
			a, _ := yaml.Marshal(got)
			b, _ := yaml.Marshal(again)
			if string(a) != string(b) {
				t.Error("not deterministic")
			}
		})
	}
}

func TestDeriveRefusesBadData(t *testing.T) {
	edge := &v1alpha1.NodeConfigSpec{Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{{Device: v1alpha1.DeviceBridge}}}}
	for _, c := range []struct{ name, want string }{
		{"mac", "ClusterPeers a.0-of-1: endpoint a1: tunnel vx-bridge"},
		{"cidr", `ClusterPeers a.0-of-1: endpoint a1: cidr "10.20.1.0/99"`},
		{"family", "different families"},
	} {
		e := ep("a1", "192.168.2.11", "220.168.2.11", "02:00:00:00:00:a1", "10.20.1.0/24")
		switch c.name {
		case "mac":
			e.Tunnels[0].MAC = "zz"
		case "cidr":
			e.CIDRs[0] = "10.20.1.0/99"
		case "family":
			e.Tunnels[0].Address = "9470::1"
		}
		_, err := Derive(edge, []v1alpha1.ClusterPeers{peers("a.0-of-1", "a", v1alpha1.ModeP2P, nil, e)})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}
