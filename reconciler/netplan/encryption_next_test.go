package netplan

import (
	"strings"
	"testing"

	"kosmos.io/kosmos/schema"
)

// TestEncryptionNextKeys: a next key an agent published (a rotation under
// way) is carried in its endpoint beside its key; a next key that is not
// one, equals its own key, is held by another node, or comes without a key
// is not carried (the rotation waits; a problem names the node where it is
// bad), and the node's key stays. A next key never costs another node its
// current key.
func TestEncryptionNextKeys(t *testing.T) {
	tp, err := schema.Load("t.yaml", []byte(keysTopology))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		keys  map[string]string
		next  map[string]string
		want  string // endpoint → key/next, sorted by cluster then node
		named []string
	}{
		{"a1 rotates", nil, map[string]string{"a1": key(11)}, "a1=1/11 a2=2/ b1=3/ b2=4/", nil},
		{"not a key", nil, map[string]string{"a1": "AAAA"}, "a1=1/ a2=2/ b1=3/ b2=4/", []string{"a1"}},
		{"its own key", nil, map[string]string{"a1": key(1)}, "a1=1/ a2=2/ b1=3/ b2=4/", nil},
		// A next key equal to another node's current key costs only the
		// announcing node its next key: b2 keeps its key (else any node
		// could blackhole another by announcing its key).
		{"b2's key", nil, map[string]string{"a1": key(4)}, "a1=1/ a2=2/ b1=3/ b2=4/", []string{"a1"}},
		{"a2's key, same cluster", nil, map[string]string{"a1": key(2)}, "a1=1/ a2=2/ b1=3/ b2=4/", []string{"a1"}},
		{"b2 rotates, a1 announces b2's current key", nil, map[string]string{"a1": key(4), "b2": key(14)}, "a1=1/ a2=2/ b1=3/ b2=4/14", []string{"a1"}},
		{"a1 announces b2's next key", nil, map[string]string{"a1": key(14), "b2": key(14)}, "a1=1/ a2=2/ b1=3/ b2=4/", []string{"a1", "b2"}},
		{"two nodes, one next key", nil, map[string]string{"a1": key(11), "b1": key(11)}, "a1=1/ a2=2/ b1=3/ b2=4/", []string{"a1", "b1"}},
		{"no key", map[string]string{"a1": "", "a2": key(2), "b1": key(3), "b2": key(4)}, map[string]string{"a1": key(11)}, "a1=/ a2=2/ b1=3/ b2=4/", []string{"a1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			keys := c.keys
			if keys == nil {
				keys = map[string]string{"a1": key(1), "a2": key(2), "b1": key(3), "b2": key(4)}
			}
			f := keysFacts(keys)
			for cl, cf := range f {
				for i := range cf.Nodes {
					cf.Nodes[i].WireGuardNextKey = c.next[cf.Nodes[i].Name]
				}
				f[cl] = cf
			}
			p := Compute(&tp.Spec, f)
			short := func(k string) string {
				for i := 0; i < 20; i++ {
					if k == key(i) {
						return strings.TrimLeft(strings.TrimSuffix(k, "A="), "0")
					}
				}
				return k
			}
			var got []string
			for _, cl := range []string{"a", "b"} {
				for _, cp := range p.Clusters {
					if cp.Name != cl {
						continue
					}
					for _, e := range cp.Peers[0].Spec.Endpoints {
						s := e.Name + "="
						if e.WireGuard != nil {
							s += short(e.WireGuard.PublicKey) + "/" + short(e.WireGuard.NextPublicKey)
						} else {
							s += "/"
						}
						got = append(got, s)
					}
				}
			}
			if strings.Join(got, " ") != c.want {
				t.Errorf("endpoints %s, want %s", strings.Join(got, " "), c.want)
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
