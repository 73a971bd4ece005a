package nodeagent

import (
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// natConfig is bigConfig(n) with 1:1 NAT and masquerade on vx-bridge, so
// that every kind of object the agent writes is in it.
func natConfig(n int) *v1alpha1.NodeConfigSpec {
	s := bigConfig(n)
	s.NAT = v1alpha1.NATSpec{
		EdgeDevices: []string{"vx-bridge"},
		Mappings:    []v1alpha1.NATMapping{{RealCIDR: "10.244.0.0/16", GlobalCIDR: "100.64.0.0/16"}},
		Masquerade:  []v1alpha1.MasqueradeRule{{Device: "vx-bridge", ExceptSources: []string{"10.244.0.0/16"}}},
	}
	return s
}

// TestLinuxKernelSet: on a real kernel (a fresh network namespace) a config
// with every kind of object is applied and read back equal, applying it
// again writes nothing, and a teardown leaves nothing of the agent's.
func TestLinuxKernelSet(t *testing.T) {
	leave := inFreshNS(t)
	defer leave()
	lk, err := NewLinuxKernel()
	if err != nil {
		t.Fatal(err)
	}
	spec := natConfig(3)
	if _, err := Set(lk, spec); err != nil {
		t.Fatal(err)
	}
	got, err := lk.Read()
	if err != nil {
		t.Fatal(err)
	}
	if want := resolved(t, lk, spec); got.String() != want.String() {
		t.Errorf("kernel\n%s\nwant\n%s", got, want)
	}
	k := &countingKernel{Kernel: lk}
	if _, err := Set(k, spec); err != nil || k.writes != 0 {
		t.Errorf("second Set wrote %d times (err %v)", k.writes, err)
	}
	if _, err := Teardown(lk); err != nil {
		t.Fatal(err)
	}
	if got, _ := lk.Read(); got.String() != "" {
		t.Errorf("after teardown the kernel holds\n%s", got)
	}
}

// TestLinuxKernelErrors: a write that fails names what it wrote and where.
func TestLinuxKernelErrors(t *testing.T) {
	leave := inFreshNS(t)
	defer leave()
	lk, err := NewLinuxKernel()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		op   Op
		want string
	}{
		{Op{Kind: OpAdd, Link: &Link{Name: "vx-a", VNI: 1, Port: 4789, MAC: "02:00:00:00:00:01", MTU: 1450, Local: "192.168.0.1", Parent: "eth9"}}, "add link vx-a (vni 1 port 4789 local 192.168.0.1 dev eth9): parent: "},
		{Op{Kind: OpDel, Link: &Link{Name: "vx-a"}}, "delete link vx-a: "},
		{Op{Kind: OpAdd, Addr: &Addr{Dev: "vx-a", CIDR: "220.0.0.1/8"}}, "add address 220.0.0.1/8 dev vx-a: "},
		{Op{Kind: OpDel, Addr: &Addr{Dev: "vx-a", CIDR: "220.0.0.1/8"}}, "delete address 220.0.0.1/8 dev vx-a: "},
		{Op{Kind: OpAdd, Route: &Route{Dst: "10.0.0.0/24", Via: "220.0.0.2", Dev: "vx-a"}}, "add route 10.0.0.0/24 via 220.0.0.2 dev vx-a: "},
		{Op{Kind: OpDel, Route: &Route{Dst: "10.0.0.0/24", Via: "220.0.0.2", Dev: "vx-a"}}, "delete route 10.0.0.0/24 via 220.0.0.2 dev vx-a: "},
		{Op{Kind: OpAdd, FDB: &FDB{Dev: "vx-a", MAC: "02:00:00:00:00:02", Dst: "192.168.0.2"}}, "add fdb entry 02:00:00:00:00:02 dst 192.168.0.2 dev vx-a: "},
		{Op{Kind: OpDel, FDB: &FDB{Dev: "vx-a", MAC: "02:00:00:00:00:02", Dst: "192.168.0.2"}}, "delete fdb entry 02:00:00:00:00:02 dst 192.168.0.2 dev vx-a: "},
		{Op{Kind: OpAdd, Neigh: &Neigh{Dev: "vx-a", IP: "220.0.0.2", MAC: "02:00:00:00:00:02"}}, "add neighbour 220.0.0.2 lladdr 02:00:00:00:00:02 dev vx-a: "},
		{Op{Kind: OpDel, Neigh: &Neigh{Dev: "vx-a", IP: "220.0.0.2", MAC: "02:00:00:00:00:02"}}, "delete neighbour 220.0.0.2 lladdr 02:00:00:00:00:02 dev vx-a: "},
		{Op{Kind: OpSet, Chains: &ChainSet{Family: "ipv4", Table: "nat", Set: []Chain{{Family: "ipv4", Table: "nat", Name: ChainPostrouting, Rules: []string{"-o vx-a -j NO-SUCH-TARGET"}}}}}, "set chains ipv4/nat: KOSMOS-POSTROUTING (1 rules): iptables-restore --noflush: exit status 2: "},
	} {
		err := lk.Apply(c.op)
		t.Log(err)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error starting %q", c.op, err, c.want)
		}
	}
	_, _ = Teardown(lk)
}

// TestLinuxKernelLinkChanges: on a real kernel, a new MTU is set on the live
// device (same index, one write); so is a new MAC, after which the device's
// neighbour entries, flushed by the kernel, are re-added; a new VNI recreates
// the device (a new one, everything on it re-added). Each time the kernel
// then holds exactly the new config.
func TestLinuxKernelLinkChanges(t *testing.T) {
	lk := freshKernel(t)
	spec := natConfig(3)
	if _, err := Set(lk, spec); err != nil {
		t.Fatal(err)
	}
	index := func() int {
		l, err := netlink.LinkByName("vx-bridge")
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().Index
	}
	for _, c := range []struct {
		name    string
		change  func(*v1alpha1.Device)
		inPlace bool
		firstOp string
		writes  int
	}{
		{"mtu", func(d *v1alpha1.Device) { d.MTU = 1400 }, true, "set link vx-bridge (mtu 1450 → 1400)", 1},
		// The set, then 3 neighbours.
		{"mac", func(d *v1alpha1.Device) { d.MAC = "02:00:00:00:00:99" }, true, "set link vx-bridge (mac 02:00:00:00:00:01 → 02:00:00:00:00:99)", 1 + 3},
		// Delete and add, then the new device's rp_filter, the address and
		// 3 each of neighbours, FDB entries and routes.
		{"vni", func(d *v1alpha1.Device) { d.VNI = 154 }, false, "del link vx-bridge (recreate: vni 54 → 154)", 2 + 1 + 1 + 3*3},
	} {
		before := index()
		c.change(&spec.Devices[0])
		res, err := Set(lk, spec)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(res.Applied) == 0 || res.Applied[0].String() != c.firstOp {
			t.Errorf("%s: writes %v, want %q first", c.name, res.Applied, c.firstOp)
		}
		if len(res.Applied) != c.writes {
			t.Errorf("%s: %d writes %v", c.name, len(res.Applied), res.Applied)
		}
		if c.inPlace != (index() == before) {
			t.Errorf("%s: device index %d → %d; in place %v", c.name, before, index(), c.inPlace)
		}
		got, _ := lk.Read()
		if want := resolved(t, lk, spec); got.String() != want.String() {
			t.Errorf("%s: kernel\n%s\nwant\n%s", c.name, got, want)
		}
	}
}
