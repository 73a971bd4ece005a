package globalip

import (
	"net/netip"
	"testing"
)

func TestToGlobal(t *testing.T) {
	m, err := Parse(map[string]string{
		"10.244.0.0/16": "100.64.0.0/16",
		"10.244.7.0/24": "100.99.7.0/24", // more specific wins
		"fd00:30::/56":  "fd99:30::/56",
	})
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"10.244.1.7":        "100.64.1.7",
		"10.244.255.254":    "100.64.255.254",
		"10.244.7.9":        "100.99.7.9",
		"10.30.0.1":         "10.30.0.1", // not mapped
		"fd00:30:0:1::5":    "fd99:30:0:1::5",
		"::ffff:10.244.1.7": "100.64.1.7", // mapped form unmapped
	} {
		if got := m.ToGlobal(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("ToGlobal(%s) = %s, want %s", in, got, want)
		}
	}
	if got := m.ToGlobalString("not-an-ip"); got != "not-an-ip" {
		t.Errorf("ToGlobalString kept garbage as %q", got)
	}
}

func TestParseRejects(t *testing.T) {
	for _, m := range []map[string]string{
		{"10.0.0.0/16": "100.64.0.0/24"},
		{"10.0.0.0/16": "fd00::/16"},
		{"nonsense": "100.64.0.0/16"},
	} {
		if _, err := Parse(m); err == nil {
			t.Errorf("Parse(%v) accepted a bad pair", m)
		}
	}
}
