package netplan

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

func TestPodImages(t *testing.T) {
	v4 := family{matches: func(a netip.Addr) bool { return a.Is4() }}
	v6 := family{v6: true, matches: func(a netip.Addr) bool { return a.Is6() }}
	maps := []v1alpha1.NATMapping{
		{RealCIDR: "10.244.0.0/16", GlobalCIDR: "100.65.0.0/16"},
		{RealCIDR: "fd00:10::/56", GlobalCIDR: "fd00:99::/56"},
	}
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		pods []netip.Prefix
		fam  family
		maps []v1alpha1.NATMapping
		want []netip.Prefix
	}{
		{"mapped", pfx("10.244.2.0/24"), v4, maps, pfx("100.65.2.0/24")},
		{"two ranges, sorted", pfx("10.244.9.0/24", "10.244.2.0/25"), v4, maps, pfx("100.65.2.0/25", "100.65.9.0/24")},
		{"outside every mapping", pfx("10.30.1.0/24"), v4, maps, nil},
		{"wider than the mapping", pfx("10.0.0.0/8"), v4, maps, nil},
		{"other family left out", pfx("10.244.2.0/24", "fd00:10:0:2::/64"), v6, maps, pfx("fd00:99:0:2::/64")},
		{"no mappings", pfx("10.244.2.0/24"), v4, nil, nil},
		{"broken mapping skipped", pfx("10.244.2.0/24"), v4, []v1alpha1.NATMapping{{RealCIDR: "10.244.0.0/16", GlobalCIDR: "100.65.0.0/24"}}, nil},
	} {
		got := podImages(tc.maps, &Node{PodCIDRs: tc.pods}, tc.fam)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestCandidateOwnPodsNAT: each gateway candidate of a cluster with
// GlobalCIDRs translates its own pods' traffic also over its path device,
// leaves sources already global as they are, and routes the global image
// of each sibling candidate's pod range to that sibling over the path
// device; nodes behind the gateway get none of it.
func TestCandidateOwnPodsNAT(t *testing.T) {
	spec, facts := loadCase(t, "testdata/mixed-global")
	p := Compute(spec, facts)
	cp := p.Cluster("member-b")
	cands := slices.Concat([]string{cp.Gateway}, cp.Standby)
	via := map[string]string{}
	for _, nc := range cp.Configs {
		for _, d := range nc.Spec.Devices {
			if d.Name == v1alpha1.DeviceLocal {
				via[nc.Name], _, _ = strings.Cut(d.Addresses[0], "/")
			}
		}
	}
	image := map[string]string{"b1": "100.65.1.0/24", "b2": "100.65.2.0/24"}
	for _, nc := range cp.Configs {
		s := nc.Spec
		var imgRoutes []v1alpha1.Route
		for _, r := range s.Routes {
			if netip.MustParsePrefix("100.65.0.0/16").Overlaps(netip.MustParsePrefix(r.Dst)) {
				imgRoutes = append(imgRoutes, r)
			}
		}
		if !slices.Contains(cands, nc.Name) {
			if len(imgRoutes) > 0 || slices.Contains(s.NAT.EdgeDevices, v1alpha1.DeviceLocal) {
				t.Errorf("node %s behind the gateway: image routes %v, edge devices %v", nc.Name, imgRoutes, s.NAT.EdgeDevices)
			}
			continue
		}
		if !slices.Equal(s.NAT.EdgeDevices, []string{v1alpha1.DeviceBridge, v1alpha1.DeviceLocal}) {
			t.Errorf("candidate %s: edge devices %v, want vx-bridge and vx-local", nc.Name, s.NAT.EdgeDevices)
		}
		if len(s.NAT.Masquerade) != 1 || !slices.Equal(s.NAT.Masquerade[0].ExceptSources, []string{"10.244.0.0/16", "100.65.0.0/16", "100.81.0.0/16"}) {
			t.Errorf("candidate %s: masquerade %+v, want the pod range and the global ranges left alone", nc.Name, s.NAT.Masquerade)
		}
		var want []v1alpha1.Route
		for _, o := range cands {
			if o != nc.Name {
				want = append(want, v1alpha1.Route{Dst: image[o], Via: via[o], Device: v1alpha1.DeviceLocal})
			}
		}
		if !slices.Equal(imgRoutes, want) {
			t.Errorf("candidate %s: image routes %+v, want %+v", nc.Name, imgRoutes, want)
		}
	}
}

// TestCandidateOwnPodsNATDualStack: per family, over that family's path
// device and to the sibling's address of that family.
func TestCandidateOwnPodsNATDualStack(t *testing.T) {
	spec, facts := loadCase(t, "testdata/dualstack-ha")
	p := Compute(spec, facts)
	if len(p.Problems) > 0 {
		t.Fatalf("plan problems: %v", p.Problems)
	}
	cp := p.Cluster("member-b")
	cands := slices.Concat([]string{cp.Gateway}, cp.Standby)
	if len(cands) != 2 {
		t.Fatalf("candidates %v, want 2", cands)
	}
	via := map[string]string{}
	for _, nc := range cp.Configs {
		for _, d := range nc.Spec.Devices {
			if d.Name == v1alpha1.DeviceLocal || d.Name == v1alpha1.DeviceLocal6 {
				via[nc.Name+"/"+d.Name], _, _ = strings.Cut(d.Addresses[0], "/")
			}
		}
	}
	image := map[string]string{"b1/4": "100.65.1.0/24", "b2/4": "100.65.2.0/24", "b1/6": "fd00:99:0:1::/64", "b2/6": "fd00:99:0:2::/64"}
	for _, nc := range cp.Configs {
		if !slices.Contains(cands, nc.Name) {
			continue
		}
		s := nc.Spec
		for _, dev := range []string{v1alpha1.DeviceLocal, v1alpha1.DeviceLocal6} {
			if !slices.Contains(s.NAT.EdgeDevices, dev) {
				t.Errorf("candidate %s: edge devices %v lack %s", nc.Name, s.NAT.EdgeDevices, dev)
			}
		}
		for _, o := range cands {
			if o == nc.Name {
				continue
			}
			for fam, dev := range map[string]string{"4": v1alpha1.DeviceLocal, "6": v1alpha1.DeviceLocal6} {
				want := v1alpha1.Route{Dst: image[o+"/"+fam], Via: via[o+"/"+dev], Device: dev}
				if !slices.Contains(s.Routes, want) {
					t.Errorf("candidate %s: no route %+v in %+v", nc.Name, want, s.Routes)
				}
			}
		}
		for _, m := range s.NAT.Masquerade {
			g := "100.65.0.0/16"
			if m.Device == v1alpha1.DeviceBridge6 {
				g = "fd00:99::/56"
			}
			if !slices.Contains(m.ExceptSources, g) {
				t.Errorf("candidate %s: masquerade on %s leaves %v alone, want %s too", nc.Name, m.Device, m.ExceptSources, g)
			}
		}
	}
}
