package dnsplugin

import (
	"testing"

	"github.com/coredns/caddy"
)

func TestParse(t *testing.T) {
	tests := []struct {
		input   string
		wantErr bool
		zones   []string
		ttl     uint32
		cluster string
		kc, ctx string
		fallAll bool
	}{
		{input: `kosmos`, zones: []string{"clusterset.local."}, ttl: 5},
		{input: `kosmos example.org`, zones: []string{"example.org."}, ttl: 5},
		{input: "kosmos {\n kubeconfig /k ctx\n cluster a\n ttl 30\n fallthrough\n}", zones: []string{"clusterset.local."}, ttl: 30, cluster: "a", kc: "/k", ctx: "ctx", fallAll: true},
		{input: "kosmos {\n kubeconfig /k\n}", zones: []string{"clusterset.local."}, ttl: 5, kc: "/k"},
		{input: "kosmos {\n ttl -1\n}", wantErr: true},
		{input: "kosmos {\n ttl 3601\n}", wantErr: true},
		{input: "kosmos {\n cluster\n}", wantErr: true},
		{input: "kosmos {\n kubeconfig\n}", wantErr: true},
		{input: "kosmos {\n bogus\n}", wantErr: true},
		{input: "kosmos\nkosmos", wantErr: true},
	}
	for _, tt := range tests {
		c := caddy.NewTestController("dns", tt.input)
		c.ServerBlockKeys = []string{"clusterset.local."}
		k, err := parse(c)
		if tt.wantErr {
			if err == nil {
				t.Errorf("%q: no error", tt.input)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.input, err)
			continue
		}
		if len(k.Zones) != len(tt.zones) || k.Zones[0] != tt.zones[0] || k.TTL != tt.ttl || k.Cluster != tt.cluster || k.Kubeconfig != tt.kc || k.Context != tt.ctx {
			t.Errorf("%q: got zones %v ttl %d cluster %q kubeconfig %q context %q", tt.input, k.Zones, k.TTL, k.Cluster, k.Kubeconfig, k.Context)
		}
		if got := k.Fall.Through("x.clusterset.local."); got != tt.fallAll {
			t.Errorf("%q: fallthrough %v, want %v", tt.input, got, tt.fallAll)
		}
	}
}
