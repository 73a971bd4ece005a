package nodeagent

import (
	"slices"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

func TestImageReturns(t *testing.T) {
	nat := v1alpha1.NATSpec{
		Mappings: []v1alpha1.NATMapping{
			{RealCIDR: "10.244.0.0/16", GlobalCIDR: "100.65.0.0/16"},
			{RealCIDR: "fd00:10::/56", GlobalCIDR: "fd00:99::/56"},
		},
		EdgeDevices: []string{"vx-bridge", "vx-local"},
	}
	route := func(dst, dev string) v1alpha1.Route {
		return v1alpha1.Route{Dst: dst, Via: "210.168.5.21", Device: dev}
	}
	for _, tc := range []struct {
		name   string
		routes []v1alpha1.Route
		dev    string
		want   []familyRule
	}{
		{"sibling image", []v1alpha1.Route{route("100.65.1.0/24", "vx-local")}, "vx-bridge",
			[]familyRule{{"ipv4", ChainPrerouting, "-d 100.65.1.0/24 -i vx-bridge -j RETURN"}}},
		{"not on the route's own device", []v1alpha1.Route{route("100.65.1.0/24", "vx-local")}, "vx-local", nil},
		{"remote ranges are no image", []v1alpha1.Route{route("10.10.1.0/24", "vx-bridge"), route("100.80.0.0/16", "vx-local")}, "vx-bridge", nil},
		{"wider than the global range", []v1alpha1.Route{route("100.64.0.0/15", "vx-local")}, "vx-bridge", nil},
		{"ipv6, deduplicated", []v1alpha1.Route{route("fd00:99:0:2::/64", "vx-local-6"), route("fd00:99:0:2::/64", "vx-local-6")}, "vx-bridge-6",
			[]familyRule{{"ipv6", ChainPrerouting, "-d fd00:99:0:2::/64 -i vx-bridge-6 -j RETURN"}}},
		{"unparsable skipped", []v1alpha1.Route{route("garbage", "vx-local")}, "vx-bridge", nil},
	} {
		spec := &v1alpha1.NodeConfigSpec{NAT: nat, Routes: tc.routes}
		if got := imageReturns(spec, tc.dev); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	// No mappings: nothing is an image.
	if got := imageReturns(&v1alpha1.NodeConfigSpec{Routes: []v1alpha1.Route{route("100.65.1.0/24", "vx-local")}}, "vx-bridge"); got != nil {
		t.Errorf("without mappings: got %v", got)
	}
}

// TestImageReturnsBeforeNETMAP: in the rendered chain the sibling's image
// is left alone before the edge device's NETMAP catches it.
func TestImageReturnsBeforeNETMAP(t *testing.T) {
	spec := &v1alpha1.NodeConfigSpec{
		NAT: v1alpha1.NATSpec{
			Mappings:    []v1alpha1.NATMapping{{RealCIDR: "10.244.0.0/16", GlobalCIDR: "100.65.0.0/16"}},
			EdgeDevices: []string{"vx-bridge", "vx-local"},
		},
		Routes: []v1alpha1.Route{{Dst: "100.65.1.0/24", Via: "210.168.5.21", Device: "vx-local"}},
	}
	var pre []string
	for _, c := range renderChains(spec, nil) {
		if c.Family == "ipv4" && c.Table == "nat" && c.Name == ChainPrerouting {
			pre = c.Rules
		}
	}
	want := []string{
		"-d 100.65.1.0/24 -i vx-bridge -j RETURN",
		"-d 100.65.0.0/16 -i vx-bridge -j NETMAP --to 10.244.0.0/16",
		"-d 100.65.0.0/16 -i vx-local -j NETMAP --to 10.244.0.0/16",
	}
	if !slices.Equal(pre, want) {
		t.Errorf("KOSMOS-PREROUTING:\n%v\nwant\n%v", pre, want)
	}
}
