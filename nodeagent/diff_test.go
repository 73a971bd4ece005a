package nodeagent

import (
	"slices"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// resolved is Desired(spec) with its links resolved by k, as Set compares it.
func resolved(t *testing.T, k Kernel, spec *v1alpha1.NodeConfigSpec) State {
	t.Helper()
	want := Desired(spec)
	for i := range want.Links {
		if err := k.Resolve(&want.Links[i]); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

func TestLinkMismatch(t *testing.T) {
	have := Link{Name: "vx-bridge", VNI: 54, Port: 4876, MAC: "fa:bf:70:f1:48:49", MTU: 1450, Local: "192.168.1.11", Parent: "eth0"}
	for _, c := range []struct {
		name     string
		change   func(*Link)
		recreate bool
		reason   string
	}{
		{"equal", func(*Link) {}, false, ""},
		{"mtu", func(l *Link) { l.MTU = 1400 }, false, "mtu 1450 → 1400"},
		{"mac", func(l *Link) { l.MAC = "02:00:00:00:00:01" }, false, "mac fa:bf:70:f1:48:49 → 02:00:00:00:00:01"},
		{"mtu and mac", func(l *Link) { l.MTU, l.MAC = 1400, "02:00:00:00:00:01" }, false, "mtu 1450 → 1400, mac fa:bf:70:f1:48:49 → 02:00:00:00:00:01"},
		{"vni", func(l *Link) { l.VNI = 55 }, true, "vni 54 → 55"},
		{"port", func(l *Link) { l.Port = 4877 }, true, "port 4876 → 4877"},
		{"local", func(l *Link) { l.Local = "192.168.1.12" }, true, "local 192.168.1.11 → 192.168.1.12"},
		{"parent", func(l *Link) { l.Parent = "eth1" }, true, "parent eth0 → eth1"},
		{"no parent", func(l *Link) { l.Parent = "" }, true, "parent eth0 → none"},
		// The identity decides; the MTU follows with the new device.
		{"vni and mtu", func(l *Link) { l.VNI, l.MTU = 55, 1400 }, true, "vni 54 → 55"},
		{"vni and port", func(l *Link) { l.VNI, l.Port = 55, 4877 }, true, "vni 54 → 55, port 4876 → 4877"},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := have
			c.change(&want)
			recreate, reason := linkMismatch(have, want)
			if recreate != c.recreate || reason != c.reason {
				t.Errorf("linkMismatch = %v, %q; want %v, %q", recreate, reason, c.recreate, c.reason)
			}
		})
	}
}

// TestLinkChanges: from the p2p-ipv4 config, an MTU change is one write that
// changes the device in place (its entries stay), a MAC change too but its
// neighbour entries are re-added; a VNI or port change deletes and adds the
// device, with the reason, and re-adds everything on it. Each leaves the
// kernel holding the new config.
func TestLinkChanges(t *testing.T) {
	recreated := func(reason string) []string {
		return []string{
			"del link vx-bridge (recreate: " + reason + ")",
			"add link vx-bridge (recreate: " + reason + ")",
			// The new device starts from the defaults.
			"set sysctl net.ipv4.conf.vx-bridge.rp_filter=2",
			"add addr 220.168.1.11/8 dev vx-bridge",
			"add neigh 220.168.2.11 dev vx-bridge",
			"add fdb 16:b5:df:c3:d3:73 dst 192.168.2.11 dev vx-bridge",
			"add route 10.20.1.0/24 via 220.168.2.11 dev vx-bridge",
			"add route 10.21.0.0/16 via 220.168.2.11 dev vx-bridge",
		}
	}
	for _, c := range []struct {
		name   string
		change func(d *v1alpha1.Device)
		want   []string
	}{
		{"mtu", func(d *v1alpha1.Device) { d.MTU = 1400 }, []string{"set link vx-bridge (mtu 1450 → 1400)"}},
		// A new MAC flushes the device's neighbour entries: they are re-added.
		{"mac", func(d *v1alpha1.Device) { d.MAC = "02:00:00:00:00:01" }, []string{"set link vx-bridge (mac fa:bf:70:f1:48:49 → 02:00:00:00:00:01)", "add neigh 220.168.2.11 dev vx-bridge"}},
		{"vni", func(d *v1alpha1.Device) { d.VNI = 56 }, recreated("vni 54 → 56")},
		// The port's guard in KOSMOS-INPUT follows the port, with its set
		// of peers: the new one is made before the rule that matches it,
		// the old one destroyed after.
		{"port", func(d *v1alpha1.Device) { d.Port = 4789 }, append(append(recreated("port 4876 → 4789")[:3:3], "add ipset KOSMOS-PEER4-4789 (ipv4 hash:ip, 1 members)"),
			append(recreated("port 4876 → 4789")[3:], "set chains ipv4/filter: KOSMOS-INPUT (2 rules)",
				// So do the tunnel's conntrack exemptions.
				"set chains ipv4/raw: KOSMOS-NOTRACK-IN (1 rules), KOSMOS-NOTRACK-OUT (1 rules)", "del ipset KOSMOS-PEER4-4876 (ipv4 hash:ip, 1 members)")...)},
		{"vni and mtu", func(d *v1alpha1.Device) { d.VNI, d.MTU = 56, 1400 }, recreated("vni 54 → 56")},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := loadConfigs(t)["p2p-ipv4"].Spec.DeepCopy()
			k := &FakeKernel{}
			if _, err := Set(k, spec); err != nil {
				t.Fatal(err)
			}
			c.change(&spec.Devices[0])
			res, err := Set(k, spec)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, op := range res.Applied {
				got = append(got, op.String())
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("writes:\n%q\nwant\n%q", got, c.want)
			}
			st, _ := k.Read()
			if want := resolved(t, k, spec); st.String() != want.String() {
				t.Errorf("kernel\n%s\nwant\n%s", st, want)
			}
		})
	}
}
