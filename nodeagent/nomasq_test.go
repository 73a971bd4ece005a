package nodeagent

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

func TestMergePrefixes(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"10.0.0.0/26", "10.0.0.0/26"},
		{"10.0.0.0/26 10.0.0.64/26", "10.0.0.0/25"},
		{"10.0.0.64/26 10.0.0.0/26 10.0.0.128/26 10.0.0.192/26", "10.0.0.0/24"},
		{"10.0.0.64/26 10.0.0.128/26", "10.0.0.64/26 10.0.0.128/26"}, // not siblings
		{"10.0.0.0/24 10.0.0.64/26 10.0.0.0/24", "10.0.0.0/24"},
		{"10.0.1.0/24 10.0.0.0/25 10.0.0.128/25", "10.0.0.0/23"},
		{"0.0.0.0/1 128.0.0.0/1", "0.0.0.0/0"},
		{"fd00::/65 fd00:0:0:0:8000::/65 10.0.0.0/25", "fd00::/64 10.0.0.0/25"},
	} {
		var in []netip.Prefix
		for _, s := range strings.Fields(c.in) {
			in = append(in, netip.MustParsePrefix(s))
		}
		var got []string
		for _, p := range mergePrefixes(in) {
			got = append(got, p.String())
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("mergePrefixes(%s) = %s, want %s", c.in, strings.Join(got, " "), c.want)
		}
	}
}

func TestNoMasqRules(t *testing.T) {
	spec := &v1alpha1.NodeConfigSpec{
		LocalCIDRs: []string{"10.10.0.0/16", "fd00:10::/56"},
		Routes: []v1alpha1.Route{
			{Dst: "10.20.0.0/26", Via: "220.0.0.2", Device: "vx-bridge"},
			{Dst: "10.20.0.64/26", Via: "220.0.0.2", Device: "vx-bridge"},
			{Dst: "100.64.1.0/24", Via: "220.0.0.3", Device: "vx-bridge"},
			{Dst: "fd00:20::/64", Via: "9470::2", Device: "vx-bridge-6"},
		},
	}
	got := fmt.Sprint(noMasqRules(spec))
	want := "[{ipv4 KOSMOS-NOMASQ -s 10.10.0.0/16 -d 10.20.0.0/25 -j ACCEPT} {ipv4 KOSMOS-NOMASQ -s 10.10.0.0/16 -d 100.64.1.0/24 -j ACCEPT} {ipv6 KOSMOS-NOMASQ -s fd00:10::/56 -d fd00:20::/64 -j ACCEPT}]"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if r := noMasqRules(&v1alpha1.NodeConfigSpec{LocalCIDRs: []string{"10.10.0.0/16"}}); len(r) != 0 {
		t.Errorf("no routes, yet rules %v", r)
	}
}
