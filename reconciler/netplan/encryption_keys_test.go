package netplan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"kosmos.io/kosmos/schema"
)

// keysTopology: a asks for WireGuard, b does not; both P2P, two nodes each.
const keysTopology = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: t}
spec:
  network: {encryption: None}
  clusters:
    - {name: a, role: host, kubeconfig: {context: a}, network: {podCIDRs: [10.1.0.0/16], encryption: WireGuard}}
    - {name: b, role: member, kubeconfig: {context: b}, network: {podCIDRs: [10.2.0.0/16]}}
`

func keysFacts(keys map[string]string, legacy ...string) Facts {
	f := Facts{}
	for i, c := range []string{"a", "b"} {
		for j := 1; j <= 2; j++ {
			name := fmt.Sprintf("%s%d", c, j)
			n := Node{Name: name, Ready: true, WireGuardKey: keys[name], LegacyAgent: slices.Contains(legacy, name),
				InternalIPs: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("192.168.%d.%d", i+1, j))},
				PodCIDRs:    []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", i+1, j))}}
			cf := f[c]
			cf.Nodes = append(cf.Nodes, n)
			f[c] = cf
		}
	}
	return f
}

func key(i int) string { return fmt.Sprintf("%042dA=", i) }

// TestEncryptionBadKeys: a published key that is not one, or that another
// node published too, is a problem naming the node, and that node is
// treated as keyless (its endpoint carries no key: encrypted peers do not
// reach it); the other nodes are unaffected. Before the fix only the length
// was checked (by the fact reader) and duplicates went into the peers,
// where each agent refused its whole config.
func TestEncryptionBadKeys(t *testing.T) {
	tp, err := schema.Load("t.yaml", []byte(keysTopology))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		keys    map[string]string
		keyless []string // endpoints without a key
		named   []string // nodes named by a key problem
	}{
		{"all good", map[string]string{"a1": key(1), "a2": key(2), "b1": key(3), "b2": key(4)}, nil, nil},
		{"not base64", map[string]string{"a1": key(1), "a2": strings.Repeat("!", 44), "b1": key(3), "b2": key(4)}, []string{"a2"}, []string{"a2"}},
		{"not 32 bytes", map[string]string{"a1": key(1), "a2": key(2), "b1": "AAAA", "b2": key(4)}, []string{"b1"}, []string{"b1"}},
		{"b2 publishes a1's key", map[string]string{"a1": key(1), "a2": key(2), "b1": key(3), "b2": key(1)}, []string{"a1", "b2"}, []string{"a1", "b2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := Compute(&tp.Spec, keysFacts(c.keys))
			var keyless []string
			for _, cp := range p.Clusters {
				for _, e := range cp.Peers[0].Spec.Endpoints {
					if e.WireGuard == nil {
						keyless = append(keyless, e.Name)
					}
				}
			}
			if strings.Join(keyless, ",") != strings.Join(c.keyless, ",") {
				t.Errorf("keyless endpoints %v, want %v", keyless, c.keyless)
			}
			var named []string
			for _, pr := range p.Problems {
				for _, n := range []string{"a1", "a2", "b1", "b2"} {
					if strings.Contains(pr, "node "+n+" published") {
						named = append(named, n)
					}
				}
			}
			if strings.Join(named, ",") != strings.Join(c.named, ",") {
				t.Errorf("problems %v: named %v, want %v", p.Problems, named, c.named)
			}
		})
	}
}

// TestLegacyAgentNoClearToEncrypted: the complete config written for an
// agent of an earlier release (it has no WireGuard) holds no entry to a
// peer it would have to reach encrypted, and a problem names it. Before
// the fix it was derived as if it had the device: FDB entries to the
// encrypted peers, which it would use in clear.
func TestLegacyAgentNoClearToEncrypted(t *testing.T) {
	tp, err := schema.Load("t.yaml", []byte(keysTopology))
	if err != nil {
		t.Fatal(err)
	}
	p := Compute(&tp.Spec, keysFacts(map[string]string{"a1": key(1), "a2": key(2), "b1": key(3), "b2": key(4)}, "b1"))
	var legacy []string
	for _, nc := range p.Cluster("b").Configs {
		if nc.Name != "b1" {
			continue
		}
		for _, f := range nc.Spec.FDB {
			legacy = append(legacy, f.Dst)
		}
	}
	if len(legacy) != 0 {
		t.Errorf("legacy b1's FDB %v: want no entry to a's (encrypted) nodes", legacy)
	}
	if !slices.ContainsFunc(p.Problems, func(s string) bool { return strings.Contains(s, "node b1 runs an agent of an earlier release") }) {
		t.Errorf("problems %v: want one naming b1", p.Problems)
	}
}
