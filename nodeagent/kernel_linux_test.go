package nodeagent

import (
	"strings"
	"testing"

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
		{Op{Kind: OpSetChain, Chain: &Chain{Family: "ipv4", Table: "nat", Name: ChainPostrouting, Rules: []string{"-o vx-a -j NO-SUCH-TARGET"}}}, "set chain ipv4/nat/KOSMOS-POSTROUTING: rule \"-o vx-a -j NO-SUCH-TARGET\": "},
	} {
		err := lk.Apply(c.op)
		t.Log(err)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error starting %q", c.op, err, c.want)
		}
	}
	_, _ = Teardown(lk)
}
