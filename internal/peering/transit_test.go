package peering

import (
	"strings"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestTransitOf: a gateway candidate's transit table sends its cluster's
// traffic out its own tunnels whatever its own choice (never to a sibling
// candidate); a node that is no candidate has none; dual-stack has one
// device per family.
func TestTransitOf(t *testing.T) {
	a1 := ep("a1", "192.168.2.11", "220.168.2.11", "02:00:00:00:00:a1", "10.20.1.0/24", "fd20:1::/64")
	a1.Tunnels = append(a1.Tunnels, v1alpha1.PeerTunnel{Device: v1alpha1.DeviceBridge6, UnderlayIP: "fd00::2:11", Address: "9470::2:11", MAC: "02:00:00:00:06:a1"})
	b1 := ep("b1", "192.168.4.11", "220.168.4.11", "02:00:00:00:00:b1")
	b2 := ep("b2", "192.168.4.12", "220.168.4.12", "02:00:00:00:00:b2")
	remote := []v1alpha1.ClusterPeers{
		peers("a.0-of-1", "a", v1alpha1.ModeP2P, nil, a1),
		peers("b.0-of-1", "b", v1alpha1.ModeGateway, []string{"b1", "b2"}, b1, b2),
	}
	remote[1].Spec.CIDRs = []string{"10.9.0.0/16"}
	candidate := func(own string, dual bool) *v1alpha1.NodeConfigSpec {
		s := &v1alpha1.NodeConfigSpec{
			Devices: []v1alpha1.Device{{Name: v1alpha1.DeviceBridge, Addresses: []string{"220.168.3." + own + "/8"}}, {Name: v1alpha1.DeviceLocal, Addresses: []string{"210.168.3." + own + "/8"}}},
			Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{
				{Device: v1alpha1.DeviceBridge},
				{Device: v1alpha1.DeviceLocal, Candidates: []v1alpha1.PathCandidate{{Name: "n1", Via: "210.168.3.11"}, {Name: "n2", Via: "210.168.3.12"}}},
			}},
		}
		if dual {
			s.Devices = append(s.Devices, v1alpha1.Device{Name: v1alpha1.DeviceBridge6, Addresses: []string{"9470::3:" + own + "/16"}}, v1alpha1.Device{Name: v1alpha1.DeviceLocal6, Addresses: []string{"9480::3:" + own + "/16"}})
			s.Peers.Paths = append(s.Peers.Paths, v1alpha1.PeerPath{Device: v1alpha1.DeviceBridge6},
				v1alpha1.PeerPath{Device: v1alpha1.DeviceLocal6, Candidates: []v1alpha1.PathCandidate{{Name: "n1", Via: "9480::3:11"}, {Name: "n2", Via: "9480::3:12"}}})
		}
		return s
	}
	behind := &v1alpha1.NodeConfigSpec{Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{{
		Device: v1alpha1.DeviceLocal, Via: "210.168.3.11",
		Candidates: []v1alpha1.PathCandidate{{Name: "n1", Via: "210.168.3.11"}, {Name: "n2", Via: "210.168.3.12"}},
	}}}}
	v4 := "route vx-bridge 10.20.1.0/24 via 220.168.2.11\nroute vx-bridge 10.9.0.0/16 via 220.168.4.11\n"
	for _, c := range []struct {
		name   string
		spec   *v1alpha1.NodeConfigSpec
		choice Choice
		want   string
	}{
		{"standby whose own choice is a sibling: its own tunnel", candidate("12", false), Choice{Local: map[string]string{v1alpha1.DeviceLocal: "n1"}}, "dev vx-local\n" + v4},
		{"the candidate in use: the same routes", candidate("12", false), Choice{Local: map[string]string{v1alpha1.DeviceLocal: "n2"}}, "dev vx-local\n" + v4},
		{"first candidate, no choice yet", candidate("11", false), Choice{}, "dev vx-local\n" + v4},
		{"remote choice followed", candidate("12", false), Choice{Remote: map[RemoteKey]string{{"b", v1alpha1.DeviceBridge}: "b2"}},
			"dev vx-local\nroute vx-bridge 10.20.1.0/24 via 220.168.2.11\nroute vx-bridge 10.9.0.0/16 via 220.168.4.12\n"},
		{"dual-stack: a device per family", candidate("12", true), Choice{Local: map[string]string{v1alpha1.DeviceLocal: "n1", v1alpha1.DeviceLocal6: "n1"}},
			"dev vx-local\ndev vx-local-6\n" + v4 + "route vx-bridge-6 fd20:1::/64 via 9470::2:11\n"},
		{"not a candidate (other address)", candidate("13", false), Choice{}, ""},
		{"a node behind the gateway", behind, Choice{}, ""},
		{"no peers", &v1alpha1.NodeConfigSpec{}, Choice{}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := TransitOf(c.spec, remote, c.choice)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, d := range got.Devices {
				b.WriteString("dev " + d + "\n")
			}
			b.WriteString(text(v1alpha1.NodeConfigSpec{Routes: got.Routes}))
			if b.String() != c.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), c.want)
			}
		})
	}
}
