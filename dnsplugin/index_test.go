package dnsplugin

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	discoveryv1 "k8s.io/api/discovery/v1"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
	"sigs.k8s.io/yaml"
)

// loadObjects reads the ServiceImports and EndpointSlices of a multi-document
// YAML file.
func loadObjects(t testing.TB, path string) ([]*mcsv1a1.ServiceImport, []*discoveryv1.EndpointSlice) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sis []*mcsv1a1.ServiceImport
	var eps []*discoveryv1.EndpointSlice
	for doc := range strings.SplitSeq(string(data), "\n---\n") {
		var tm struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch tm.Kind {
		case "ServiceImport":
			si := &mcsv1a1.ServiceImport{}
			if err := yaml.UnmarshalStrict([]byte(doc), si); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			sis = append(sis, si)
		case "EndpointSlice":
			s := &discoveryv1.EndpointSlice{}
			if err := yaml.UnmarshalStrict([]byte(doc), s); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			eps = append(eps, s)
		default:
			t.Fatalf("%s: unexpected kind %q", path, tm.Kind)
		}
	}
	return sis, eps
}

const soa = "clusterset.local. 5 IN SOA ns.dns.clusterset.local. hostmaster.clusterset.local. 1 7200 1800 86400 5"

var handlerCases = []test.Case{
	// ClusterSetIP: the service addresses of clusters with ready endpoints
	// (a: local; b: global address; c: none ready, left out).
	{Qname: "web.shop.svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess, Authoritative: true, Answer: []dns.RR{
		test.A("web.shop.svc.clusterset.local. 5 IN A 10.96.0.10"),
		test.A("web.shop.svc.clusterset.local. 5 IN A 100.65.0.20"),
	}},
	{Qname: "WEB.Shop.svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess, Authoritative: true, Answer: []dns.RR{
		test.A("web.shop.svc.clusterset.local. 5 IN A 10.96.0.10"),
		test.A("web.shop.svc.clusterset.local. 5 IN A 100.65.0.20"),
	}},
	// NODATA: the name exists, not the type.
	{Qname: "web.shop.svc.clusterset.local.", Qtype: dns.TypeAAAA, Rcode: dns.RcodeSuccess, Authoritative: true, Ns: []dns.RR{test.SOA(soa)}},
	{Qname: "web.shop.svc.clusterset.local.", Qtype: dns.TypeTXT, Rcode: dns.RcodeSuccess, Authoritative: true, Ns: []dns.RR{test.SOA(soa)}},
	// SRV for the named port only, target the service, its addresses added.
	{Qname: "_http._tcp.web.shop.svc.clusterset.local.", Qtype: dns.TypeSRV, Rcode: dns.RcodeSuccess, Authoritative: true,
		Answer: []dns.RR{test.SRV("_http._tcp.web.shop.svc.clusterset.local. 5 IN SRV 0 100 80 web.shop.svc.clusterset.local.")},
		Extra: []dns.RR{
			test.A("web.shop.svc.clusterset.local. 5 IN A 10.96.0.10"),
			test.A("web.shop.svc.clusterset.local. 5 IN A 100.65.0.20"),
		}},
	{Qname: "web.shop.svc.clusterset.local.", Qtype: dns.TypeSRV, Rcode: dns.RcodeSuccess, Authoritative: true,
		Answer: []dns.RR{test.SRV("web.shop.svc.clusterset.local. 5 IN SRV 0 100 80 web.shop.svc.clusterset.local.")},
		Extra: []dns.RR{
			test.A("web.shop.svc.clusterset.local. 5 IN A 10.96.0.10"),
			test.A("web.shop.svc.clusterset.local. 5 IN A 100.65.0.20"),
		}},
	{Qname: "_http._udp.web.shop.svc.clusterset.local.", Qtype: dns.TypeSRV, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{test.SOA(soa)}},
	// No per-cluster name for ClusterSetIP services.
	{Qname: "a.web.shop.svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{test.SOA(soa)}},
	// Headless: every ready endpoint of every cluster.
	{Qname: "db.shop.svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess, Authoritative: true, Answer: []dns.RR{
		test.A("db.shop.svc.clusterset.local. 5 IN A 10.244.0.7"),
		test.A("db.shop.svc.clusterset.local. 5 IN A 100.64.1.9"),
	}},
	{Qname: "db-0.a.db.shop.svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess, Authoritative: true, Answer: []dns.RR{
		test.A("db-0.a.db.shop.svc.clusterset.local. 5 IN A 10.244.0.7"),
	}},
	{Qname: "db-1.a.db.shop.svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{test.SOA(soa)}},
	{Qname: "100-64-1-9.b.db.shop.svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess, Authoritative: true, Answer: []dns.RR{
		test.A("100-64-1-9.b.db.shop.svc.clusterset.local. 5 IN A 100.64.1.9"),
	}},
	{Qname: "_mysql._tcp.db.shop.svc.clusterset.local.", Qtype: dns.TypeSRV, Rcode: dns.RcodeSuccess, Authoritative: true,
		Answer: []dns.RR{
			test.SRV("_mysql._tcp.db.shop.svc.clusterset.local. 5 IN SRV 0 100 3306 100-64-1-9.b.db.shop.svc.clusterset.local."),
			test.SRV("_mysql._tcp.db.shop.svc.clusterset.local. 5 IN SRV 0 100 3306 db-0.a.db.shop.svc.clusterset.local."),
		},
		Extra: []dns.RR{
			test.A("100-64-1-9.b.db.shop.svc.clusterset.local. 5 IN A 100.64.1.9"),
			test.A("db-0.a.db.shop.svc.clusterset.local. 5 IN A 10.244.0.7"),
		}},
	// The cluster label of a headless service is an empty non-terminal.
	{Qname: "a.db.shop.svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess, Authoritative: true, Ns: []dns.RR{test.SOA(soa)}},
	// No ready endpoint anywhere: the VIP all the same.
	{Qname: "idle.shop.svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess, Authoritative: true, Answer: []dns.RR{
		test.A("idle.shop.svc.clusterset.local. 5 IN A 10.96.0.99"),
	}},
	{Qname: "gone.shop.svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{test.SOA(soa)}},
	{Qname: "nope.shop.svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{test.SOA(soa)}},
	{Qname: "web.other.svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{test.SOA(soa)}},
	// Parents of existing names exist.
	{Qname: "shop.svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess, Authoritative: true, Ns: []dns.RR{test.SOA(soa)}},
	{Qname: "svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess, Authoritative: true, Ns: []dns.RR{test.SOA(soa)}},
	{Qname: "dns-version.clusterset.local.", Qtype: dns.TypeTXT, Rcode: dns.RcodeSuccess, Authoritative: true, Answer: []dns.RR{
		test.TXT(`dns-version.clusterset.local. 5 IN TXT "1.0.0"`),
	}},
	{Qname: "clusterset.local.", Qtype: dns.TypeSOA, Rcode: dns.RcodeSuccess, Authoritative: true, Answer: []dns.RR{test.SOA(soa)}},
	// The VIP (the derived Service's ClusterIPs): one stable address per
	// family, not the exporters' service addresses.
	{Qname: "vip.shop.svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess, Authoritative: true, Answer: []dns.RR{
		test.A("vip.shop.svc.clusterset.local. 5 IN A 10.96.50.1"),
	}},
	{Qname: "vip.shop.svc.clusterset.local.", Qtype: dns.TypeAAAA, Rcode: dns.RcodeSuccess, Authoritative: true, Answer: []dns.RR{
		test.AAAA("vip.shop.svc.clusterset.local. 5 IN AAAA fd00::50"),
	}},
	{Qname: "_http._tcp.vip.shop.svc.clusterset.local.", Qtype: dns.TypeSRV, Rcode: dns.RcodeSuccess, Authoritative: true,
		Answer: []dns.RR{test.SRV("_http._tcp.vip.shop.svc.clusterset.local. 5 IN SRV 0 100 80 vip.shop.svc.clusterset.local.")},
		Extra: []dns.RR{
			test.A("vip.shop.svc.clusterset.local. 5 IN A 10.96.50.1"),
			test.AAAA("vip.shop.svc.clusterset.local. 5 IN AAAA fd00::50"),
		}},
	// IPv6.
	{Qname: "v6.shop.svc.clusterset.local.", Qtype: dns.TypeAAAA, Rcode: dns.RcodeSuccess, Authoritative: true, Answer: []dns.RR{
		test.AAAA("v6.shop.svc.clusterset.local. 5 IN AAAA fd00::10"),
	}},
	{Qname: "v6.shop.svc.clusterset.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess, Authoritative: true, Ns: []dns.RR{test.SOA(soa)}},
	{Qname: "_dns._udp.v6.shop.svc.clusterset.local.", Qtype: dns.TypeSRV, Rcode: dns.RcodeSuccess, Authoritative: true,
		Answer: []dns.RR{test.SRV("_dns._udp.v6.shop.svc.clusterset.local. 5 IN SRV 0 100 53 v6.shop.svc.clusterset.local.")},
		Extra:  []dns.RR{test.AAAA("v6.shop.svc.clusterset.local. 5 IN AAAA fd00::10")}},
}

func newTestPlugin(t testing.TB, local string) *Kosmos {
	sis, eps := loadObjects(t, "testdata/cluster-a.yaml")
	k := &Kosmos{Zones: []string{"clusterset.local."}, TTL: 5, Cluster: local, Next: test.NextHandler(dns.RcodeRefused, nil)}
	k.setIndexes(map[string]*Index{"clusterset.local.": Build(BuildOptions{Zone: "clusterset.local", Cluster: local, TTL: 5, Serial: 1}, sis, eps)})
	return k
}

func TestServeDNS(t *testing.T) {
	k := newTestPlugin(t, "a")
	for _, tc := range handlerCases {
		t.Run(dns.TypeToString[tc.Qtype]+" "+tc.Qname, func(t *testing.T) {
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			if _, err := k.ServeDNS(context.Background(), rec, tc.Msg()); err != nil {
				t.Fatal(err)
			}
			if err := test.SortAndCheck(rec.Msg, tc); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestLocalFirst checks the order SortAndCheck ignores: the local cluster's
// address leads.
func TestLocalFirst(t *testing.T) {
	for local, want := range map[string]string{"a": "10.96.0.10", "b": "100.65.0.20", "": "10.96.0.10"} {
		k := newTestPlugin(t, local)
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		m := new(dns.Msg)
		m.SetQuestion("web.shop.svc.clusterset.local.", dns.TypeA)
		if _, err := k.ServeDNS(context.Background(), rec, m); err != nil {
			t.Fatal(err)
		}
		if len(rec.Msg.Answer) != 2 || rec.Msg.Answer[0].(*dns.A).A.String() != want {
			t.Errorf("local %q: answer %v, want %s first", local, rec.Msg.Answer, want)
		}
	}
}

func TestFallthroughAndOtherZones(t *testing.T) {
	k := newTestPlugin(t, "a")
	ask := func(name string) int {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		rcode, err := k.ServeDNS(context.Background(), rec, m)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Msg != nil {
			return rec.Msg.Rcode
		}
		return rcode
	}
	// Outside the zone: always the next plugin (it answers REFUSED here).
	if got := ask("example.org."); got != dns.RcodeRefused {
		t.Errorf("example.org.: rcode %s, want the next plugin's REFUSED", dns.RcodeToString[got])
	}
	if got := ask("nope.shop.svc.clusterset.local."); got != dns.RcodeNameError {
		t.Errorf("without fallthrough: rcode %s, want NXDOMAIN", dns.RcodeToString[got])
	}
	k.Fall = fall.Root
	if got := ask("nope.shop.svc.clusterset.local."); got != dns.RcodeRefused {
		t.Errorf("with fallthrough: rcode %s, want the next plugin's REFUSED", dns.RcodeToString[got])
	}
	// Existing names are answered, not passed on.
	if got := ask("web.shop.svc.clusterset.local."); got != dns.RcodeSuccess {
		t.Errorf("with fallthrough, existing name: rcode %s, want NOERROR", dns.RcodeToString[got])
	}
}

func TestNotSyncedIsServfail(t *testing.T) {
	k := &Kosmos{Zones: []string{"clusterset.local."}}
	m := new(dns.Msg)
	m.SetQuestion("web.shop.svc.clusterset.local.", dns.TypeA)
	rcode, err := k.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), m)
	if err != nil || rcode != dns.RcodeServerFailure {
		t.Errorf("before sync: rcode %s, err %v; want SERVFAIL", dns.RcodeToString[rcode], err)
	}
	if k.Ready() {
		t.Error("Ready before sync")
	}
}

// TestReverse: PTR records for other clusters' addresses; the local
// cluster's, and unknown ones, go to the next plugin (cluster.local has
// them), fallthrough or not.
func TestReverse(t *testing.T) {
	k := newTestPlugin(t, "a")
	k.Zones = []string{"clusterset.local.", "in-addr.arpa.", "ip6.arpa."}
	cases := []test.Case{
		{Qname: "20.0.65.100.in-addr.arpa.", Qtype: dns.TypePTR, Rcode: dns.RcodeSuccess, Authoritative: true,
			Answer: []dns.RR{test.PTR("20.0.65.100.in-addr.arpa. 5 IN PTR web.shop.svc.clusterset.local.")}},
		{Qname: "9.1.64.100.in-addr.arpa.", Qtype: dns.TypePTR, Rcode: dns.RcodeSuccess, Authoritative: true,
			Answer: []dns.RR{test.PTR("9.1.64.100.in-addr.arpa. 5 IN PTR 100-64-1-9.b.db.shop.svc.clusterset.local.")}},
		{Qname: "20.0.65.100.in-addr.arpa.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess, Authoritative: true,
			Ns: []dns.RR{test.SOA("in-addr.arpa. 5 IN SOA ns.dns.clusterset.local. hostmaster.clusterset.local. 1 7200 1800 86400 5")}},
	}
	for _, tc := range cases {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := k.ServeDNS(context.Background(), rec, tc.Msg()); err != nil {
			t.Fatal(err)
		}
		if err := test.SortAndCheck(rec.Msg, tc); err != nil {
			t.Errorf("%s %s: %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
		}
	}
	// The local cluster's service (a), a not-ready cluster's (c), an unknown
	// address, the local v6 service: the next plugin answers (REFUSED here).
	// A VIP and the service address of an exporter of a VIP import (its
	// PTR is cluster.local's, in the cluster it belongs to).
	for _, name := range []string{"10.0.96.10.in-addr.arpa.", "30.0.97.10.in-addr.arpa.", "1.2.3.4.in-addr.arpa.",
		"1.50.96.10.in-addr.arpa.", "21.0.65.100.in-addr.arpa.",
		"0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypePTR)
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		rcode, err := k.ServeDNS(context.Background(), rec, m)
		if err != nil || rcode != dns.RcodeRefused || rec.Msg != nil {
			t.Errorf("%s PTR: rcode %s, err %v, answered %v; want the next plugin", name, dns.RcodeToString[rcode], err, rec.Msg != nil)
		}
	}
}
