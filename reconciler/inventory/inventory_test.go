package inventory

import (
	"slices"
	"strings"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

func e(kind, ns, name, uid string) Entry {
	return Entry{APIVersion: "v1", Kind: kind, Namespace: ns, Name: name, UID: uid}
}

func keys(es []Entry) string {
	var out []string
	for _, x := range es {
		out = append(out, x.Key())
	}
	return strings.Join(out, ",")
}

func TestEntryRoundTrip(t *testing.T) {
	for _, x := range []Entry{e("ConfigMap", "kosmos-system", "kosmos-dns", "u1"), {APIVersion: "kosmos.io/v1alpha1", Kind: "NodeConfig", Name: "n1", UID: "u2"}} {
		got, err := ParseEntry(x.String())
		if err != nil || got != x {
			t.Errorf("ParseEntry(%q) = %+v, %v", x.String(), got, err)
		}
	}
	for _, bad := range []string{"", "v1 ConfigMap", "v1 ConfigMap ns/ uid", "a b c d e"} {
		if _, err := ParseEntry(bad); err == nil {
			t.Errorf("ParseEntry(%q) accepted", bad)
		}
	}
}

func TestStale(t *testing.T) {
	old := []Entry{e("ConfigMap", "a", "x", "1"), e("ConfigMap", "a", "y", "2"), e("Cluster", "", "m", "3")}
	for _, c := range []struct {
		want map[string]bool
		out  string
	}{
		{map[string]bool{"ConfigMap/a/x": true, "ConfigMap/a/y": true, "Cluster/m": true}, ""},
		{map[string]bool{"ConfigMap/a/x": true}, "Cluster/m,ConfigMap/a/y"},
		{nil, "Cluster/m,ConfigMap/a/x,ConfigMap/a/y"},
	} {
		if got := keys(Stale(old, c.want)); got != c.out {
			t.Errorf("Stale(%v) = %s, want %s", c.want, got, c.out)
		}
	}
}

func TestMerge(t *testing.T) {
	a := Inventory{"c1": {Role: v1alpha1.RoleHost, Objects: []Entry{e("ConfigMap", "a", "x", "1")}}}
	b := Inventory{"c1": {Objects: []Entry{e("ConfigMap", "a", "x", "9"), e("ConfigMap", "a", "z", "3")}}, "c2": {Objects: []Entry{e("Cluster", "", "m", "4")}}}
	m := Merge(a, b)
	// The newer (b, the unsaved) entry of a key wins: it is the object that
	// was applied last.
	if got := keys(m["c1"].Objects); got != "ConfigMap/a/x,ConfigMap/a/z" || m["c1"].Objects[0].UID != "9" || m["c1"].Role != v1alpha1.RoleHost {
		t.Errorf("merged c1: %+v", m["c1"])
	}
	if got := keys(m["c2"].Objects); got != "Cluster/m" {
		t.Errorf("merged c2: %s", got)
	}
	if len(a["c1"].Objects) != 1 {
		t.Error("Merge changed its input")
	}
}

func TestCheck(t *testing.T) {
	dels := func(n int) []Deletion {
		var out []Deletion
		for i := range n {
			out = append(out, Deletion{Cluster: "c", Entry: e("ConfigMap", "a", string(rune('a'+i)), "u")})
		}
		return out
	}
	for _, c := range []struct {
		name           string
		dels, total    int
		percent        int
		confirm        bool
		tripped, token bool
	}{
		{"nothing to delete", 0, 10, 50, false, false, false},
		{"a small share", 2, 10, 50, false, false, true},
		{"exactly half", 5, 10, 50, false, false, true},
		{"more than half", 6, 10, 50, false, true, true},
		{"everything", 10, 10, 50, false, true, true},
		{"confirmed", 6, 10, 50, true, false, true},
		{"guard off", 10, 10, 100, false, false, true},
		{"a stricter guard", 2, 10, 10, false, true, true},
	} {
		g := Check(dels(c.dels), c.total, c.percent, "")
		if c.confirm {
			g = Check(dels(c.dels), c.total, c.percent, g.Token)
		}
		if g.Tripped != c.tripped || (g.Token != "") != c.token {
			t.Errorf("%s: %+v", c.name, g)
		}
	}
	// The token confirms exactly one set of deletions.
	g1, g2 := Check(dels(6), 10, 50, ""), Check(dels(7), 10, 50, "")
	if g1.Token == g2.Token {
		t.Error("two deletion sets share a token")
	}
	if Check(dels(7), 10, 50, g1.Token).Tripped == false {
		t.Error("a token confirmed a different set of deletions")
	}
	if msg := g1.Message(); !strings.Contains(msg, g1.Token) || !strings.Contains(msg, v1alpha1.AnnotationConfirmDeletions) {
		t.Errorf("message: %s", msg)
	}
}

func TestEncodeDecode(t *testing.T) {
	inv := Inventory{
		"host":     {Role: v1alpha1.RoleHost, Kubeconfig: v1alpha1.KubeconfigRef{Context: "host"}, Objects: []Entry{e("ConfigMap", "kosmos-system", "kosmos-dns", "1")}},
		"member-a": {Role: v1alpha1.RoleMember, Kubeconfig: v1alpha1.KubeconfigRef{SecretRef: &v1alpha1.SecretKeyRef{Name: "kc-a", Key: "kubeconfig"}}},
	}
	data, err := Encode(inv)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range data {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(got, []string{"host", "member-a"}) {
		t.Errorf("keys %v", got)
	}
	back, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if back["host"].Objects[0] != inv["host"].Objects[0] || back["member-a"].Kubeconfig.SecretRef.Name != "kc-a" || len(back["member-a"].Objects) != 0 {
		t.Errorf("round trip: %+v %+v", back["host"], back["member-a"])
	}
	if _, err := Decode(map[string]string{"x": `{"role":"host","kubeconfig":{},"objects":["nope"]}`}); err == nil {
		t.Error("a bad entry was accepted")
	}
	if _, err := Decode(map[string]string{"x": `{"role":"host","token":"s3cret"}`}); err == nil {
		t.Error("an unknown field was accepted")
	}
	big := Inventory{"c": {}}
	for i := range 20000 {
		big["c"].Objects = append(big["c"].Objects, Entry{APIVersion: "kosmos.io/v1alpha1", Kind: "NodeConfig", Name: strings.Repeat("n", 20) + string(rune('a'+i%26)), UID: "0123456789abcdef0123456789abcdef0123"})
	}
	if _, err := Encode(big); err == nil {
		t.Error("an inventory over the ConfigMap limit was accepted")
	}
}
