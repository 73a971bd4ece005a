package netplan

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"kosmos.io/kosmos/schema"
)

// TestEncryption: the rule (a pair is encrypted when either side asks)
// shows in which edge nodes get a WireGuard device (encryptAll when their
// own cluster asks), what each ClusterPeers says, which endpoints carry
// keys, and a problem naming an edge node without a key.
func TestEncryption(t *testing.T) {
	topo := func(global string, overrides map[string]string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "apiVersion: kosmos.io/v1alpha1\nkind: KosmosTopology\nmetadata: {name: t}\nspec:\n  network: {encryption: %s}\n  clusters:\n", global)
		for i, c := range []string{"a", "b", "c"} {
			role, mode := "member", "P2P"
			if i == 0 {
				role = "host"
			}
			if c == "b" {
				mode = "Gateway"
			}
			enc := ""
			if o, ok := overrides[c]; ok {
				enc = ", encryption: " + o
			}
			fmt.Fprintf(&b, "    - {name: %s, role: %s, kubeconfig: {context: %s}, network: {mode: %s, podCIDRs: [10.%d.0.0/16]%s}}\n", c, role, c, mode, i+1, enc)
		}
		return b.String()
	}
	facts := func(withKeys bool) Facts {
		f := Facts{}
		for i, c := range []string{"a", "b", "c"} {
			for j := 1; j <= 2; j++ {
				n := Node{Name: fmt.Sprintf("%s%d", c, j), Ready: true,
					InternalIPs: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("192.168.%d.%d", i+1, j))},
					PodCIDRs:    []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", i+1, j))}}
				if withKeys {
					n.WireGuardKey = fmt.Sprintf("%042dA=", i*10+j)
				}
				cf := f[c]
				cf.Nodes = append(cf.Nodes, n)
				f[c] = cf
			}
		}
		return f
	}
	// summary: per cluster, its nodes with a WireGuard device (* when
	// encryptAll), what its ClusterPeers ask, and its endpoints with keys.
	summary := func(p *Plan) string {
		var b strings.Builder
		for _, cp := range p.Clusters {
			var devs, keyed []string
			for _, nc := range cp.Configs {
				if w := nc.Spec.WireGuard; w != nil {
					s := nc.Name
					if w.EncryptAll {
						s += "*"
					}
					devs = append(devs, s)
				}
			}
			for _, e := range cp.Peers[0].Spec.Endpoints {
				if e.WireGuard != nil {
					keyed = append(keyed, e.Name)
				}
			}
			fmt.Fprintf(&b, "%s: wg [%s] asks %q keys [%s]\n", cp.Name, strings.Join(devs, " "), cp.Peers[0].Spec.Encryption, strings.Join(keyed, " "))
		}
		return b.String()
	}
	for _, c := range []struct {
		name      string
		global    string
		overrides map[string]string
		keys      bool
		want      string
		problems  int
	}{
		{"none anywhere: no device, no key, objects as before", "None", nil, true,
			"a: wg [] asks \"\" keys []\nb: wg [] asks \"\" keys []\nc: wg [] asks \"\" keys []\n", 0},
		{"one cluster asks: every cluster has an encrypted pair", "None", map[string]string{"a": "WireGuard"}, true,
			"a: wg [a1* a2*] asks \"WireGuard\" keys [a1 a2]\nb: wg [b1] asks \"\" keys [b1]\nc: wg [c1 c2] asks \"\" keys [c1 c2]\n", 0},
		{"everyone asks but c opts out: c still encrypts with the others", "WireGuard", map[string]string{"c": "None"}, true,
			"a: wg [a1* a2*] asks \"WireGuard\" keys [a1 a2]\nb: wg [b1*] asks \"WireGuard\" keys [b1]\nc: wg [c1 c2] asks \"\" keys [c1 c2]\n", 0},
		{"no key published yet: a problem per edge node, no key in the endpoints", "WireGuard", nil, false,
			"a: wg [a1* a2*] asks \"WireGuard\" keys []\nb: wg [b1*] asks \"WireGuard\" keys []\nc: wg [c1* c2*] asks \"WireGuard\" keys []\n", 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			tp, err := schema.Load("t.yaml", []byte(topo(c.global, c.overrides)))
			if err != nil {
				t.Fatal(err)
			}
			p := Compute(&tp.Spec, facts(c.keys))
			if got := summary(p); got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
			n := 0
			for _, pr := range p.Problems {
				if strings.Contains(pr, "WireGuard key") {
					n++
				}
			}
			if n != c.problems || len(p.Problems) != n {
				t.Errorf("problems %d, want %d: %v", len(p.Problems), c.problems, p.Problems)
			}
		})
	}
}
