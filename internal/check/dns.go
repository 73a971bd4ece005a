package check

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// ImportReport is one ServiceImport Kosmos keeps in a cluster: what the
// cluster's DNS should answer for it.
type ImportReport struct {
	Namespace, Name string
	// Headless imports answer their endpoints, not a VIP.
	Headless bool
	// IPs is spec.ips: the VIP (the derived Service's ClusterIPs); empty
	// until the reconciler has written it.
	IPs []string
}

// Ask asks a DNS server one question and returns the response code and
// the answers as text (addresses for A/AAAA, the strings for TXT).
type Ask func(ctx context.Context, name string, qtype uint16) (rcode int, answers []string, err error)

// DNSQuery returns an Ask that queries the server at addr (host:port) over
// UDP, each question bounded by timeout.
func DNSQuery(addr string, timeout time.Duration) Ask {
	return func(ctx context.Context, name string, qtype uint16) (int, []string, error) {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		r, _, err := new(dns.Client).ExchangeContext(ctx, m, addr)
		if err != nil {
			return 0, nil, fmt.Errorf("ask %s for %s %s: %w", addr, name, dns.TypeToString[qtype], err)
		}
		var out []string
		for _, rr := range r.Answer {
			switch v := rr.(type) {
			case *dns.A:
				out = append(out, v.A.String())
			case *dns.AAAA:
				out = append(out, v.AAAA.String())
			case *dns.TXT:
				out = append(out, strings.Join(v.Txt, " "))
			}
		}
		return r.Rcode, out, nil
	}
}

// DNSCheck asks the DNS server a cluster's pods use (server names it, ask
// reaches it; nil ask: none given) for the clusterset zone: the zone's
// dns-version TXT record (answered once the zone is wired to the Kosmos
// plugin), and, when the cluster holds a ClusterSetIP import with its VIP,
// that import's name, which must answer exactly the VIP. It is one row:
// SKIP without a server to ask, FAIL with what went wrong, PASS with what
// was answered.
func DNSCheck(ctx context.Context, cluster, domain, server string, ask Ask, imports []ImportReport) Check {
	domain = strings.TrimSuffix(cmp.Or(domain, v1alpha1.DefaultDNSDomain), ".")
	c := Check{Name: "cluster " + cluster + " DNS answers " + domain}
	if ask == nil {
		c.Result, c.Detail = "SKIP", "no cluster DNS server to ask (kosmos check --dns HOST:PORT, the cluster DNS as reachable from here)"
		return c
	}
	version := "dns-version." + domain + "."
	rcode, ans, err := ask(ctx, version, dns.TypeTXT)
	if err != nil || rcode != dns.RcodeSuccess || !slices.Contains(ans, v1alpha1.DNSSchemaVersion) {
		c.Result, c.Detail = "FAIL", fmt.Sprintf("%s: %s TXT %s; is %s forwarded to kosmos-dns (kustomize/components/coredns-clusterset)?",
			server, version, answerText(rcode, ans, err), domain)
		return c
	}
	c.Result, c.Detail = "PASS", fmt.Sprintf("%s: %s TXT %q", server, version, v1alpha1.DNSSchemaVersion)
	i := slices.IndexFunc(imports, func(im ImportReport) bool { return !im.Headless && len(im.IPs) > 0 })
	if i < 0 {
		c.Detail += "; no ClusterSetIP import with a VIP here to ask for"
		return c
	}
	im := imports[i]
	name := im.Name + "." + im.Namespace + ".svc." + domain + "."
	var got []string
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rcode, ans, err := ask(ctx, name, qt)
		if err != nil || rcode != dns.RcodeSuccess {
			c.Result, c.Detail = "FAIL", fmt.Sprintf("%s: %s %s %s, want its VIP %s", server, name, dns.TypeToString[qt], answerText(rcode, ans, err), strings.Join(im.IPs, ","))
			return c
		}
		got = append(got, ans...)
	}
	if !sameSet(got, im.IPs) {
		c.Result, c.Detail = "FAIL", fmt.Sprintf("%s: %s answers %s, want its VIP %s", server, name, dash(strings.Join(got, ",")), strings.Join(im.IPs, ","))
		return c
	}
	c.Detail += fmt.Sprintf("; %s %s (the VIP)", name, strings.Join(got, ","))
	return c
}

func answerText(rcode int, ans []string, err error) string {
	if err != nil {
		return err.Error()
	}
	return dns.RcodeToString[rcode] + " " + dash(strings.Join(ans, ","))
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// collectImports reads the ServiceImports Kosmos keeps in a cluster.
func collectImports(ctx context.Context, c client.Client, topology string) ([]ImportReport, error) {
	var sis mcsv1a1.ServiceImportList
	if err := c.List(ctx, &sis, client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelTopology: topology}); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil // the MCS CRDs are not installed: nothing imported
		}
		return nil, fmt.Errorf("list ServiceImports: %w", err)
	}
	return importReports(sis.Items), nil
}

// importReports are the imports the DNS row may ask about, sorted. Pure.
// kosmos check --probe's own imports are left out: they come and go within
// one run (its clean-up may delete them while the row asks), so the row
// asks about a lasting import, or none.
func importReports(sis []mcsv1a1.ServiceImport) []ImportReport {
	var out []ImportReport
	for _, si := range sis {
		if si.Namespace == reconciler.ProbeNamespace {
			continue
		}
		out = append(out, ImportReport{Namespace: si.Namespace, Name: si.Name, Headless: si.Spec.Type == mcsv1a1.Headless, IPs: si.Spec.IPs})
	}
	slices.SortFunc(out, func(a, b ImportReport) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}
