package check

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
)

// TestDNSCheck judges the cluster DNS row from answers: a zone not wired
// (NXDOMAIN, or no server) fails, a wired zone passes, a VIP name must
// answer exactly the import's spec.ips, and no server to ask is a SKIP.
func TestDNSCheck(t *testing.T) {
	type answer struct {
		rcode int
		ans   []string
		err   error
	}
	server := func(records map[string]answer) Ask {
		return func(_ context.Context, name string, qtype uint16) (int, []string, error) {
			a, ok := records[name+" "+dns.TypeToString[qtype]]
			if !ok {
				return dns.RcodeNameError, nil, nil
			}
			return a.rcode, a.ans, a.err
		}
	}
	wired := map[string]answer{"dns-version.clusterset.local. TXT": {dns.RcodeSuccess, []string{"1.0.0"}, nil}}
	withVIP := func(a, aaaa []string) map[string]answer {
		m := map[string]answer{"web.shop.svc.clusterset.local. A": {dns.RcodeSuccess, a, nil}, "web.shop.svc.clusterset.local. AAAA": {dns.RcodeSuccess, aaaa, nil}}
		for k, v := range wired {
			m[k] = v
		}
		return m
	}
	imports := []ImportReport{{Namespace: "shop", Name: "db", Headless: true}, {Namespace: "shop", Name: "web", IPs: []string{"10.96.7.7", "fd00::7"}}}
	for _, tc := range []struct {
		name    string
		ask     Ask
		imports []ImportReport
		result  string
		detail  string
	}{
		{"no server", nil, imports, "SKIP", "--dns"},
		{"zone not wired", server(nil), imports, "FAIL", "NXDOMAIN"},
		{"server down", server(map[string]answer{"dns-version.clusterset.local. TXT": {err: errors.New("i/o timeout")}}), imports, "FAIL", "i/o timeout"},
		{"wired, nothing imported", server(wired), nil, "PASS", "no ClusterSetIP import"},
		{"wired, VIP answered", server(withVIP([]string{"10.96.7.7"}, []string{"fd00::7"})), imports, "PASS", "10.96.7.7,fd00::7 (the VIP)"},
		{"wired, old answer", server(withVIP([]string{"10.96.0.10", "100.65.0.20"}, nil)), imports, "FAIL", "want its VIP"},
		{"wired, VIP name missing", server(wired), imports, "FAIL", "NXDOMAIN"},
	} {
		c := DNSCheck(context.Background(), "host", "", "127.0.0.1:53", tc.ask, tc.imports)
		if c.Result != tc.result || !strings.Contains(c.Detail, tc.detail) || c.Name != "cluster host DNS answers clusterset.local" {
			t.Errorf("%s: %s %s %q, want %s with %q", tc.name, c.Name, c.Result, c.Detail, tc.result, tc.detail)
		}
	}
}

// TestImportReports: the DNS row never asks about kosmos check --probe's
// own imports (its clean-up may delete them meanwhile: the row failed with
// NXDOMAIN on a fresh sandbox); the others come sorted.
func TestImportReports(t *testing.T) {
	si := func(ns, name string, typ mcsv1a1.ServiceImportType, ips ...string) mcsv1a1.ServiceImport {
		return mcsv1a1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: mcsv1a1.ServiceImportSpec{Type: typ, IPs: ips}}
	}
	got := importReports([]mcsv1a1.ServiceImport{
		si("kosmos-probe", "kosmos-probe-7dd24efc-host", mcsv1a1.ClusterSetIP, "10.11.8.62"),
		si("shop", "web", mcsv1a1.ClusterSetIP, "10.11.0.9"),
		si("db", "pg", mcsv1a1.Headless),
	})
	want := []ImportReport{{Namespace: "db", Name: "pg", Headless: true}, {Namespace: "shop", Name: "web", IPs: []string{"10.11.0.9"}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("importReports = %+v, want %+v", got, want)
	}
}
