package peering

import (
	"fmt"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

func TestDeriveWithChoice(t *testing.T) {
	g1 := ep("g1", "192.168.3.11", "220.168.3.11", "02:00:00:00:00:b1")
	g2 := ep("g2", "192.168.3.12", "220.168.3.12", "02:00:00:00:00:b2")
	g3 := ep("g3", "192.168.3.13", "220.168.3.13", "02:00:00:00:00:b3")
	remote := []v1alpha1.ClusterPeers{peers("b.0-of-1", "b", v1alpha1.ModeGateway, []string{"g1", "g2", "g3"}, g1, g2, g3)}
	edge := &v1alpha1.NodeConfigSpec{Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{{Device: v1alpha1.DeviceBridge}}}}
	behind := &v1alpha1.NodeConfigSpec{Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{{
		Device: v1alpha1.DeviceLocal, Via: "210.0.0.1",
		Candidates: []v1alpha1.PathCandidate{{Name: "n1", Via: "210.0.0.1"}, {Name: "n2", Via: "210.0.0.2"}},
	}}}}
	hot := "fdb vx-bridge 02:00:00:00:00:b1 192.168.3.11\nfdb vx-bridge 02:00:00:00:00:b2 192.168.3.12\nfdb vx-bridge 02:00:00:00:00:b3 192.168.3.13\n" +
		"neigh vx-bridge 220.168.3.11 02:00:00:00:00:b1\nneigh vx-bridge 220.168.3.12 02:00:00:00:00:b2\nneigh vx-bridge 220.168.3.13 02:00:00:00:00:b3\n"
	for _, c := range []struct {
		name   string
		spec   *v1alpha1.NodeConfigSpec
		choice Choice
		want   string
	}{
		{"no choice: the first candidate", edge, Choice{}, hot + "route vx-bridge 10.9.0.0/16 via 220.168.3.11\n"},
		{"remote choice: the chosen candidate", edge, Choice{Remote: map[RemoteKey]string{{"b", v1alpha1.DeviceBridge}: "g3"}}, hot + "route vx-bridge 10.9.0.0/16 via 220.168.3.13\n"},
		{"remote choice of an unknown node: the first", edge, Choice{Remote: map[RemoteKey]string{{"b", v1alpha1.DeviceBridge}: "zz"}}, hot + "route vx-bridge 10.9.0.0/16 via 220.168.3.11\n"},
		{"choice for another cluster: the first", edge, Choice{Remote: map[RemoteKey]string{{"c", v1alpha1.DeviceBridge}: "g2"}}, hot + "route vx-bridge 10.9.0.0/16 via 220.168.3.11\n"},
		{"local choice: via the chosen candidate", behind, Choice{Local: map[string]string{v1alpha1.DeviceLocal: "n2"}}, "route vx-local 10.9.0.0/16 via 210.0.0.2\n"},
		{"local choice of an unknown candidate: Via", behind, Choice{Local: map[string]string{v1alpha1.DeviceLocal: "n9"}}, "route vx-local 10.9.0.0/16 via 210.0.0.1\n"},
		{"local choice on another device: Via", behind, Choice{Local: map[string]string{v1alpha1.DeviceLocal6: "n2"}}, "route vx-local 10.9.0.0/16 via 210.0.0.1\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := DeriveWith(c.spec, remote, c.choice)
			if err != nil {
				t.Fatal(err)
			}
			if text(got) != c.want {
				t.Errorf("got\n%s\nwant\n%s", text(got), c.want)
			}
		})
	}
}

func TestGroups(t *testing.T) {
	g1 := ep("g1", "192.168.3.11", "220.168.3.11", "02:00:00:00:00:b1")
	g2 := ep("g2", "192.168.3.12", "220.168.3.12", "02:00:00:00:00:b2")
	a1 := ep("a1", "192.168.2.11", "220.168.2.11", "02:00:00:00:00:a1", "10.20.1.0/24")
	edge := &v1alpha1.NodeConfigSpec{Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{{Device: v1alpha1.DeviceBridge}}}}
	behind := &v1alpha1.NodeConfigSpec{Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{{
		Device: v1alpha1.DeviceLocal, Via: "210.0.0.1",
		Candidates: []v1alpha1.PathCandidate{{Name: "n1", Via: "210.0.0.1"}, {Name: "n2", Via: "bad"}, {Name: "n3", Via: "210.0.0.3"}},
	}}}}
	single := &v1alpha1.NodeConfigSpec{Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{{Device: v1alpha1.DeviceLocal, Via: "210.0.0.1"}}}}
	all := []v1alpha1.ClusterPeers{
		peers("a.0-of-1", "a", v1alpha1.ModeP2P, nil, a1),
		peers("b.0-of-1", "b", v1alpha1.ModeGateway, []string{"g2", "g1"}, g1, g2),
		peers("c.0-of-1", "c", v1alpha1.ModeGateway, []string{"g1"}, g1),
	}
	for _, c := range []struct {
		name string
		spec *v1alpha1.NodeConfigSpec
		want string
	}{
		{"edge: remote Gateway clusters of more than one candidate", edge, "[{b vx-bridge false [{g2 220.168.3.12} {g1 220.168.3.11}]}]"},
		{"behind: own candidates, unparseable left out", behind, "[{own vx-local true [{n1 210.0.0.1} {n3 210.0.0.3}]}]"},
		{"behind a single gateway: nothing to probe", single, "[]"},
		{"no peers: nothing", &v1alpha1.NodeConfigSpec{}, "[]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := fmt.Sprint(Groups(c.spec, Select(c.spec, all))); got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

// TestCandidateOwnTraffic: a gateway candidate sends its own traffic through
// the candidate in use: itself (its cross-cluster routes), or another one
// over vx-local (its cross-cluster path then keeps only FDB and neighbour
// entries, hot for traffic that arrives).
func TestCandidateOwnTraffic(t *testing.T) {
	a1 := ep("a1", "192.168.2.11", "220.168.2.11", "02:00:00:00:00:a1", "10.20.1.0/24")
	remote := []v1alpha1.ClusterPeers{peers("a.0-of-1", "a", v1alpha1.ModeP2P, nil, a1)}
	spec := &v1alpha1.NodeConfigSpec{
		Devices: []v1alpha1.Device{{Name: v1alpha1.DeviceBridge, Addresses: []string{"220.168.3.12/8"}}, {Name: v1alpha1.DeviceLocal, Addresses: []string{"210.168.3.12/8"}}},
		Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{
			{Device: v1alpha1.DeviceBridge},
			{Device: v1alpha1.DeviceLocal, Candidates: []v1alpha1.PathCandidate{{Name: "n1", Via: "210.168.3.11"}, {Name: "n2", Via: "210.168.3.12"}}},
		}},
	}
	hot := "fdb vx-bridge 02:00:00:00:00:a1 192.168.2.11\nneigh vx-bridge 220.168.2.11 02:00:00:00:00:a1\n"
	for _, c := range []struct {
		name   string
		choice Choice
		want   string
	}{
		{"the first (another node): through it over vx-local", Choice{}, hot + "route vx-local 10.9.0.0/16 via 210.168.3.11\n"},
		{"itself: its own cross-cluster routes", Choice{Local: map[string]string{v1alpha1.DeviceLocal: "n2"}}, hot + "route vx-bridge 10.20.1.0/24 via 220.168.2.11\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := DeriveWith(spec, remote, c.choice)
			if err != nil {
				t.Fatal(err)
			}
			if text(got) != c.want {
				t.Errorf("got\n%s\nwant\n%s", text(got), c.want)
			}
		})
	}
}

// TestDeriveWithChoiceDualStack: the remote choice is per family (device);
// an IPv6-only failover moves the IPv6 routes only.
func TestDeriveWithChoiceDualStack(t *testing.T) {
	dual := func(name, n, mac4, mac6 string) v1alpha1.PeerEndpoint {
		e := ep(name, "192.168.3."+n, "220.168.3."+n, mac4)
		e.Tunnels = append(e.Tunnels, v1alpha1.PeerTunnel{Device: v1alpha1.DeviceBridge6, UnderlayIP: "fd00::3:" + n, Address: "9470::3:" + n, MAC: mac6})
		return e
	}
	remote := []v1alpha1.ClusterPeers{peers("b.0-of-1", "b", v1alpha1.ModeGateway, []string{"g1", "g2"},
		dual("g1", "11", "02:00:00:00:00:b1", "02:00:00:00:06:b1"), dual("g2", "12", "02:00:00:00:00:b2", "02:00:00:00:06:b2"))}
	edge := &v1alpha1.NodeConfigSpec{Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{{Device: v1alpha1.DeviceBridge}, {Device: v1alpha1.DeviceBridge6}}}}
	routes := func(s v1alpha1.NodeConfigSpec) string {
		var out string
		for _, r := range s.Routes {
			out += r.Device + " " + r.Dst + " via " + r.Via + "\n"
		}
		return out
	}
	for _, c := range []struct {
		name   string
		choice Choice
		want   string
	}{
		{"no choice: the first of each family", Choice{}, "vx-bridge 10.9.0.0/16 via 220.168.3.11\nvx-bridge-6 fd09::/56 via 9470::3:11\n"},
		{"IPv6 failover only", Choice{Remote: map[RemoteKey]string{{"b", v1alpha1.DeviceBridge6}: "g2"}}, "vx-bridge 10.9.0.0/16 via 220.168.3.11\nvx-bridge-6 fd09::/56 via 9470::3:12\n"},
		{"IPv4 failover only", Choice{Remote: map[RemoteKey]string{{"b", v1alpha1.DeviceBridge}: "g2"}}, "vx-bridge 10.9.0.0/16 via 220.168.3.12\nvx-bridge-6 fd09::/56 via 9470::3:11\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := DeriveWith(edge, remote, c.choice)
			if err != nil {
				t.Fatal(err)
			}
			if routes(got) != c.want {
				t.Errorf("routes\n%s\nwant\n%s", routes(got), c.want)
			}
		})
	}
}

// TestUnkeyedCandidateSkipped: with WireGuard, a gateway candidate without
// a published key cannot be tunnelled to: the routes go to the first
// reachable candidate, and it is not a probe target.
func TestUnkeyedCandidateSkipped(t *testing.T) {
	g1 := ep("g1", "192.168.3.11", "220.168.3.11", "02:00:00:00:00:b1")
	g2 := withKey(ep("g2", "192.168.3.12", "220.168.3.12", "02:00:00:00:00:b2"), keyG1)
	g3 := withKey(ep("g3", "192.168.3.13", "220.168.3.13", "02:00:00:00:00:b3"), keyA1)
	wg := &v1alpha1.WireGuardSpec{Device: v1alpha1.DeviceWireGuard, Port: 51871, FirewallMark: 1, EncryptAll: true}
	edge := &v1alpha1.NodeConfigSpec{WireGuard: wg, Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{{Device: v1alpha1.DeviceBridge}}}}
	remote := []v1alpha1.ClusterPeers{peers("b.0-of-1", "b", v1alpha1.ModeGateway, []string{"g1", "g2", "g3"}, g1, g2, g3)}
	for _, c := range []struct {
		name   string
		choice Choice
		want   string
	}{
		{"no choice: the first keyed candidate", Choice{}, "vx-bridge 10.9.0.0/16 via 220.168.3.12\n"},
		{"the unkeyed candidate chosen: the first keyed one", Choice{Remote: map[RemoteKey]string{{"b", v1alpha1.DeviceBridge}: "g1"}}, "vx-bridge 10.9.0.0/16 via 220.168.3.12\n"},
		{"a keyed candidate chosen", Choice{Remote: map[RemoteKey]string{{"b", v1alpha1.DeviceBridge}: "g3"}}, "vx-bridge 10.9.0.0/16 via 220.168.3.13\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := DeriveWith(edge, remote, c.choice)
			if err != nil {
				t.Fatal(err)
			}
			var routes string
			for _, r := range got.Routes {
				routes += r.Device + " " + r.Dst + " via " + r.Via + "\n"
			}
			if routes != c.want {
				t.Errorf("routes\n%s\nwant\n%s", routes, c.want)
			}
		})
	}
	if got := fmt.Sprint(Groups(edge, remote)); got != "[{b vx-bridge false [{g2 220.168.3.12} {g3 220.168.3.13}]}]" {
		t.Errorf("groups %s, want g2 and g3 only", got)
	}
}
