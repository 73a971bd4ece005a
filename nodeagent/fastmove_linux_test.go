package nodeagent

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestLinuxKernelMoveRoutes: on a real kernel, ReadRoutes sees what Read
// sees of routes (the agent's devices, its routes, other owners'
// destinations), and the fast path moves the agent's route to its new next
// hop while another owner's route to a destination the new config also
// names stays as it was.
func TestLinuxKernelMoveRoutes(t *testing.T) {
	leave := inFreshNS(t)
	defer leave()
	lk, err := NewLinuxKernel()
	if err != nil {
		t.Fatal(err)
	}
	spec := bigConfig(3)
	if _, err := Set(lk, spec); err != nil {
		t.Fatal(err)
	}
	eth0, err := netlink.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	_, foreign, _ := net.ParseCIDR("172.31.0.0/24")
	if err := netlink.RouteAdd(&netlink.Route{Dst: foreign, LinkIndex: eth0.Attrs().Index}); err != nil {
		t.Fatal(err)
	}
	full, err := lk.Read()
	if err != nil {
		t.Fatal(err)
	}
	view, err := lk.ReadRoutes()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range full.Links {
		names = append(names, l.Name)
	}
	slices.Sort(view.Devices)
	byDst := func(a, b Route) int { return strings.Compare(a.Dst, b.Dst) }
	slices.SortFunc(view.Routes, byDst)
	slices.SortFunc(full.Routes, byDst)
	if !slices.Equal(view.Devices, names) || !slices.Equal(view.Routes, full.Routes) || full.Others.Routes["172.31.0.0/24"] == "" {
		t.Fatalf("ReadRoutes %+v, Read: devices %v routes %v others %v", view, names, full.Routes, full.Others.Routes)
	}
	moved := spec.DeepCopy()
	moved.Routes[0].Via = "220.99.0.9"
	moved.Routes = append(moved.Routes, moved.Routes[1])
	moved.Routes[len(moved.Routes)-1].Dst = "172.31.0.0/24"
	held := spec.DeepCopy() // the config the kernel holds, with entries for the new next hop
	held.Neighbors = append(held.Neighbors, v1alpha1.Neighbor{IP: "220.99.0.9", MAC: "02:00:00:99:00:09", Device: moved.Routes[0].Device})
	n, err := moveRoutes(lk, moved, held)
	if err != nil || n != 1 {
		t.Fatalf("moveRoutes: %d writes, err %v; want 1 write", n, err)
	}
	after, err := lk.ReadRoutes()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(after.Routes, byDst)
	want := slices.Clone(full.Routes)
	for i := range want {
		if want[i].Dst == moved.Routes[0].Dst {
			want[i].Via = "220.99.0.9"
		}
	}
	if !slices.Equal(after.Routes, want) {
		t.Errorf("routes after the move %v, want %v", after.Routes, want)
	}
	if afterFull, err := lk.Read(); err != nil || afterFull.Others.Routes["172.31.0.0/24"] != full.Others.Routes["172.31.0.0/24"] {
		t.Errorf("another owner's route changed: %q (%v), was %q", afterFull.Others.Routes["172.31.0.0/24"], err, full.Others.Routes["172.31.0.0/24"])
	}
	_, _ = Teardown(lk)
}
