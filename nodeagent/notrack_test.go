package nodeagent

import (
	"reflect"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestNoTrackRules: an edge that translates leaves packets from its
// cluster's global ranges untracked (one rule per GlobalCIDR, by family),
// so a packet a sibling candidate already translated is neither
// masqueraded nor given a clashing conntrack entry; a node that does not
// translate has no raw chain at all.
func TestNoTrackRules(t *testing.T) {
	mappings := []v1alpha1.NATMapping{
		{RealCIDR: "10.244.0.0/16", GlobalCIDR: "100.65.0.0/16"},
		{RealCIDR: "fd00:10::/64", GlobalCIDR: "fd00:65::1/64"},
		{RealCIDR: "10.96.0.0/16", GlobalCIDR: "not a prefix"},
	}
	for _, c := range []struct {
		name string
		nat  v1alpha1.NATSpec
		want map[string][]string
	}{
		{"edge with mappings", v1alpha1.NATSpec{EdgeDevices: []string{"vx-bridge", "vx-bridge-6"}, Mappings: mappings},
			map[string][]string{
				"ipv4": {"-s 100.65.0.0/16 -j CT --notrack"},
				"ipv6": {"-s fd00:65::/64 -j CT --notrack"},
			}},
		{"node behind the gateway: mappings, no edge", v1alpha1.NATSpec{Mappings: mappings}, nil},
		{"edge without mappings", v1alpha1.NATSpec{EdgeDevices: []string{"vx-bridge"}}, map[string][]string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := &v1alpha1.NodeConfigSpec{NAT: c.nat}
			if got := noTrackRules(spec); !reflect.DeepEqual(got, c.want) {
				t.Errorf("noTrackRules = %v, want %v", got, c.want)
			}
			var raw []Chain
			for _, ch := range renderChains(spec, map[string]bool{"vx-bridge-6": true}) {
				if ch.Table == "raw" {
					raw = append(raw, ch)
				}
			}
			if len(raw) != len(c.want) {
				t.Errorf("raw chains %v, want one per family of %v", raw, c.want)
			}
			for _, ch := range raw {
				if ch.Name != ChainNoTrack || !reflect.DeepEqual(ch.Rules, c.want[ch.Family]) {
					t.Errorf("raw chain %s %s: %v, want %v", ch.Family, ch.Name, ch.Rules, c.want[ch.Family])
				}
			}
		})
	}
}
