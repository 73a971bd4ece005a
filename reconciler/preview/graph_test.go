package preview

import (
	"strings"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// topo builds a defaulted topology of the given clusters.
func topo(cs ...v1alpha1.ClusterSpec) *v1alpha1.KosmosTopology {
	t := &v1alpha1.KosmosTopology{Spec: v1alpha1.TopologySpec{Clusters: cs}}
	t.Name = "t"
	v1alpha1.SetDefaults(t)
	return t
}

func cluster(name, region string, fam v1alpha1.IPFamily, mode v1alpha1.NetworkMode, cidrs ...string) v1alpha1.ClusterSpec {
	return v1alpha1.ClusterSpec{Name: name, Role: v1alpha1.RoleMember, Region: region,
		Network: v1alpha1.ClusterNetwork{IPFamily: fam, Mode: mode, PodCIDRs: cidrs}}
}

// TestGraphOf: tunnels join only clusters that both take part in
// ClusterLink and share a family; clusters without a region come last; a
// known gateway is named; labels are escaped for both languages.
func TestGraphOf(t *testing.T) {
	off := cluster("off", "r1", v1alpha1.IPv4, "", "10.9.0.0/16")
	off.Network.Enabled = new(bool)
	cases := []struct {
		name     string
		topo     *v1alpha1.KosmosTopology
		gateways map[string]string
		mermaid  []string // lines the Mermaid text holds
		dot      []string // lines the DOT text holds
		not      []string // text neither holds
	}{
		{
			name:    "families",
			topo:    topo(cluster("v4", "r1", v1alpha1.IPv4, "", "10.1.0.0/16"), cluster("v6", "r1", v1alpha1.IPv6, "", "fd00:1::/56"), cluster("ds", "", v1alpha1.DualStack, "", "10.2.0.0/16", "fd00:2::/56")),
			mermaid: []string{`  c_v4 ---|"IPv4"| c_ds`, `  c_v6 ---|"IPv6"| c_ds`, `  subgraph region_1["no region"]`},
			dot:     []string{`  "v4" -- "ds" [label="IPv4"];`, `  "v6" -- "ds" [label="IPv6"];`},
			not:     []string{"c_v4 ---|\"IPv4\"| c_v6", `"v4" -- "v6"`},
		},
		{
			name:    "dual-stack pair",
			topo:    topo(cluster("a", "r", v1alpha1.DualStack, "", "10.1.0.0/16"), cluster("b", "r", v1alpha1.DualStack, "", "10.2.0.0/16")),
			mermaid: []string{`  c_a ---|"IPv4+IPv6"| c_b`},
		},
		{
			name:    "ClusterLink off",
			topo:    topo(cluster("a", "r1", v1alpha1.IPv4, "", "10.1.0.0/16"), off),
			mermaid: []string{`    c_off["off (member)<br/>ClusterLink off<br/>pods 10.9.0.0/16"]`},
			not:     []string{"---", " -- "},
		},
		{
			name:     "gateway known",
			topo:     topo(cluster("gw-x", "r", v1alpha1.IPv4, v1alpha1.ModeGateway, "10.1.0.0/16")),
			gateways: map[string]string{"gw-x": "node-7"},
			mermaid:  []string{`    c_gw_x["gw-x (member)<br/>Gateway via node-7 · IPv4<br/>pods 10.1.0.0/16"]`},
		},
		{
			name:    "escaping",
			topo:    topo(cluster("a", `eu "west" <1> #2 & \x`, v1alpha1.IPv4, "", "10.1.0.0/16")),
			mermaid: []string{`  subgraph region_0["region eu #quot;west#quot; #lt;1#gt; #35;2 #amp; \x"]`},
			dot:     []string{`    label="region eu \"west\" <1> #2 & \\x";`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := GraphOf(c.topo, c.gateways)
			mmd, dot := g.Mermaid(), g.DOT()
			for _, want := range c.mermaid {
				if !strings.Contains(mmd, want+"\n") {
					t.Errorf("Mermaid lacks %q:\n%s", want, mmd)
				}
			}
			for _, want := range c.dot {
				if !strings.Contains(dot, want+"\n") {
					t.Errorf("DOT lacks %q:\n%s", want, dot)
				}
			}
			for _, bad := range c.not {
				if strings.Contains(mmd, bad) || strings.Contains(dot, bad) {
					t.Errorf("output holds %q:\n%s\n%s", bad, mmd, dot)
				}
			}
			if err := checkMermaid(mmd); err != nil {
				t.Errorf("%v\n%s", err, mmd)
			}
		})
	}
}

// TestCheckMermaid: the structural check refuses what leaves the subset,
// so it can fail (each case is a mistake a renderer could make).
func TestCheckMermaid(t *testing.T) {
	good := "flowchart LR\n  subgraph r[\"x\"]\n    a[\"A\"]\n    b[\"B<br/>#quot;\"]\n  end\n  a ---|\"l\"| b\n"
	if err := checkMermaid(good); err != nil {
		t.Fatalf("good text refused: %v", err)
	}
	bad := map[string]string{
		"no header":       strings.TrimPrefix(good, "flowchart LR\n"),
		"unclosed":        strings.Replace(good, "  end\n", "", 1),
		"undeclared":      strings.Replace(good, "a ---", "z ---", 1),
		"quote in label":  strings.Replace(good, `"A"`, `"A"B"`, 1),
		"pipe in label":   strings.Replace(good, `"l"`, `"l|m"`, 1),
		"raw markup":      strings.Replace(good, `"A"`, `"<b>A</b>"`, 1),
		"stray hash":      strings.Replace(good, `"A"`, `"#A"`, 1),
		"dash in id":      strings.Replace(strings.Replace(good, "a[", "a-1[", 1), "  a ---", "  a-1 ---", 1),
		"keyword id":      strings.Replace(strings.Replace(good, "    a[", "    end[", 1), "  a ---", "  end ---", 1),
		"declared twice":  strings.Replace(good, "    b[", "    a[", 1),
		"node outside":    strings.Replace(good, "  end\n", "  end\n    c[\"C\"]\n", 1),
		"nested subgraph": strings.Replace(good, "    a[", "  subgraph s[\"y\"]\n    a[", 1),
		"empty label":     strings.Replace(good, `"A"`, `""`, 1),
	}
	for name, text := range bad {
		if err := checkMermaid(text); err == nil {
			t.Errorf("%s: accepted\n%s", name, text)
		}
	}
}
