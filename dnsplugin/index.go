package dnsplugin

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
	discoveryv1 "k8s.io/api/discovery/v1"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Index holds every record of one zone, computed from the ServiceImports
// and EndpointSlices of the cluster. It is immutable once built: queries
// read it without locks, and a change in the cluster builds a new one.
type Index struct {
	zone  string
	soa   *dns.SOA
	names map[string]*node
	// ptrs are the PTR records of addresses of other clusters (their
	// services' and headless endpoints' global addresses), by reverse name;
	// the local cluster's addresses have theirs in cluster.local.
	ptrs map[string][]dns.RR
}

// node is one owner name: its records by type, and for SRV records the
// addresses of their targets (the additional section). A node without
// records is an empty non-terminal: it exists (NODATA, not NXDOMAIN).
type node struct {
	rrs   map[uint16][]dns.RR
	extra map[uint16][]dns.RR
}

// BuildOptions are the parameters of an index besides the objects.
type BuildOptions struct {
	// Zone is the domain served, e.g. clusterset.local.
	Zone string
	// Cluster is the name of the cluster the plugin runs in; its endpoints
	// come first in answers.
	Cluster string
	// TTL of every record.
	TTL uint32
	// Serial of the zone's SOA record.
	Serial uint32
}

// Build computes the records of a zone from ServiceImports and the
// EndpointSlices imported for them (labelled with the MCS service-name and
// source-cluster labels). It is a pure function of its arguments.
func Build(o BuildOptions, imports []*mcsv1a1.ServiceImport, eps []*discoveryv1.EndpointSlice) *Index {
	zone := dns.Fqdn(strings.ToLower(o.Zone))
	idx := &Index{zone: zone, names: map[string]*node{}, ptrs: map[string][]dns.RR{}}
	idx.soa = &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: o.TTL},
		Ns:      "ns.dns." + zone,
		Mbox:    "hostmaster." + zone,
		Serial:  o.Serial,
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  o.TTL,
	}
	idx.add(zone, idx.soa)
	idx.add("dns-version."+zone, &dns.TXT{Hdr: hdr("dns-version."+zone, dns.TypeTXT, o.TTL), Txt: []string{v1alpha1.DNSSchemaVersion}})

	bySvc := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range eps {
		name := s.Labels[mcsv1a1.LabelServiceName]
		if name == "" || s.Labels[mcsv1a1.LabelSourceCluster] == "" {
			continue
		}
		k := s.Namespace + "/" + name
		bySvc[k] = append(bySvc[k], s)
	}
	for _, si := range imports {
		b := builder{idx: idx, o: o, si: si, svc: strings.ToLower(si.Name + "." + si.Namespace + ".svc." + zone)}
		b.build(orderSlices(bySvc[si.Namespace+"/"+si.Name], o.Cluster))
	}
	return idx
}

// orderSlices sorts slices by source cluster, the local cluster first, then
// by name, so answers list the local cluster's addresses first.
func orderSlices(in []*discoveryv1.EndpointSlice, local string) []*discoveryv1.EndpointSlice {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b *discoveryv1.EndpointSlice) int {
		ca, cb := a.Labels[mcsv1a1.LabelSourceCluster], b.Labels[mcsv1a1.LabelSourceCluster]
		return cmp.Or(-cmp.Compare(boolInt(ca == local), boolInt(cb == local)), cmp.Compare(ca, cb), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// builder adds the records of one ServiceImport.
type builder struct {
	idx  *Index
	o    BuildOptions
	si   *mcsv1a1.ServiceImport
	svc  string // <svc>.<ns>.svc.<zone>.
	seen map[string]bool
}

func (b *builder) build(eps []*discoveryv1.EndpointSlice) {
	b.seen = map[string]bool{}
	if b.si.Spec.Type == mcsv1a1.Headless {
		b.headless(eps)
		return
	}
	if len(b.si.Spec.IPs) > 0 {
		// The VIP: the ClusterIP of the Service Kosmos derived from the
		// import, whose slices hold every cluster's endpoints; it stays the
		// answer whatever their readiness. Its PTR is cluster.local's.
		for _, ip := range b.si.Spec.IPs {
			b.address(b.svc, ip)
		}
	} else {
		b.serviceAddresses(eps)
	}
	if b.idx.names[b.svc] == nil {
		return // nothing to answer with: the name does not exist
	}
	extra := b.addressRecords(b.svc)
	for _, p := range b.si.Spec.Ports {
		if p.Name == "" {
			continue
		}
		b.srv(p.Name, string(cmp.Or(p.Protocol, "TCP")), p.Port, b.svc, extra)
	}
}

// serviceAddresses answers an import without a VIP yet (its derived
// Service not allocated, or written by an older reconciler): the service
// addresses of the exporting clusters that have ready endpoints, the local
// cluster's first.
func (b *builder) serviceAddresses(eps []*discoveryv1.EndpointSlice) {
	for _, s := range eps {
		if !anyReady(s) {
			continue
		}
		remote := s.Labels[mcsv1a1.LabelSourceCluster] != b.o.Cluster
		for ip := range strings.SplitSeq(s.Annotations[v1alpha1.AnnotationServiceIPs], ",") {
			b.address(b.svc, strings.TrimSpace(ip))
			if remote {
				b.ptr(strings.TrimSpace(ip), b.svc)
			}
		}
	}
}

// headless adds the ready endpoints' addresses under the service name and
// under <hostname>.<cluster>.<service>, and SRV records per named port and
// endpoint.
func (b *builder) headless(eps []*discoveryv1.EndpointSlice) {
	type target struct {
		name  string
		ports []discoveryv1.EndpointPort
	}
	var targets []target
	for _, s := range eps {
		cluster := strings.ToLower(s.Labels[mcsv1a1.LabelSourceCluster])
		for _, ep := range s.Endpoints {
			if !ready(ep) || len(ep.Addresses) == 0 {
				continue
			}
			host := ""
			if ep.Hostname != nil && *ep.Hostname != "" {
				host = strings.ToLower(*ep.Hostname)
			} else {
				host = dashed(ep.Addresses[0])
			}
			name := host + "." + cluster + "." + b.svc
			for _, a := range ep.Addresses {
				b.address(b.svc, a)
				b.address(name, a)
				if cluster != strings.ToLower(b.o.Cluster) {
					b.ptr(a, name)
				}
			}
			if !b.seen["t:"+name] {
				b.seen["t:"+name] = true
				targets = append(targets, target{name, s.Ports})
			}
		}
	}
	if b.idx.names[b.svc] == nil {
		return
	}
	for _, p := range b.si.Spec.Ports {
		if p.Name == "" {
			continue
		}
		for _, t := range targets {
			port := p.Port
			for _, sp := range t.ports {
				if sp.Name != nil && *sp.Name == p.Name && sp.Port != nil {
					port = *sp.Port
				}
			}
			b.srv(p.Name, string(cmp.Or(p.Protocol, "TCP")), port, t.name, b.addressRecords(t.name))
		}
	}
}

// dashed is the system-assigned hostname of an endpoint without one: its
// address with dots (or colons) replaced by dashes.
func dashed(addr string) string {
	return strings.NewReplacer(".", "-", ":", "-").Replace(strings.ToLower(addr))
}

// address adds an A or AAAA record for ip under name, once.
func (b *builder) address(name, ip string) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return
	}
	key := name + " " + a.String()
	if b.seen[key] {
		return
	}
	b.seen[key] = true
	if a.Is4() {
		b.idx.add(name, &dns.A{Hdr: hdr(name, dns.TypeA, b.o.TTL), A: a.AsSlice()})
	} else {
		b.idx.add(name, &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, b.o.TTL), AAAA: a.AsSlice()})
	}
}

// ptr adds the PTR record of ip to target, once.
func (b *builder) ptr(ip, target string) {
	rev, err := dns.ReverseAddr(ip)
	if err != nil {
		return
	}
	key := "ptr " + rev + " " + target
	if b.seen[key] {
		return
	}
	b.seen[key] = true
	b.idx.ptrs[rev] = append(b.idx.ptrs[rev], &dns.PTR{Hdr: hdr(rev, dns.TypePTR, b.o.TTL), Ptr: target})
}

func (b *builder) addressRecords(name string) []dns.RR {
	n := b.idx.names[name]
	if n == nil {
		return nil
	}
	return append(slices.Clone(n.rrs[dns.TypeA]), n.rrs[dns.TypeAAAA]...)
}

// srv adds _<port>._<proto>.<svc> SRV <target>, with the target's
// addresses as additional records; the SRV query on the service name itself
// lists every named port too.
func (b *builder) srv(port, proto string, number int32, target string, extra []dns.RR) {
	owner := "_" + strings.ToLower(port) + "._" + strings.ToLower(proto) + "." + b.svc
	for _, name := range []string{owner, b.svc} {
		key := "srv " + name + " " + target + " " + port
		if b.seen[key] {
			continue
		}
		b.seen[key] = true
		rr := &dns.SRV{Hdr: hdr(name, dns.TypeSRV, b.o.TTL), Priority: 0, Weight: 100, Port: uint16(number), Target: target}
		b.idx.add(name, rr)
		n := b.idx.names[name]
		n.extra[dns.TypeSRV] = append(n.extra[dns.TypeSRV], extra...)
	}
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

// add records rr under name and makes every ancestor of name, up to the
// zone, exist.
func (idx *Index) add(name string, rr dns.RR) {
	n := idx.node(name)
	n.rrs[rr.Header().Rrtype] = append(n.rrs[rr.Header().Rrtype], rr)
	for p := name; p != idx.zone && len(p) > len(idx.zone); {
		i := strings.IndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[i+1:]
		idx.node(p)
	}
}

func (idx *Index) node(name string) *node {
	n := idx.names[name]
	if n == nil {
		n = &node{rrs: map[uint16][]dns.RR{}, extra: map[uint16][]dns.RR{}}
		idx.names[name] = n
	}
	return n
}

// Result is the answer to one question.
type Result struct {
	// Rcode is dns.RcodeSuccess or dns.RcodeNameError.
	Rcode int
	// Answer and Extra are the answer and additional sections; both empty
	// with RcodeSuccess is NODATA. The records are shared: copy before
	// changing them.
	Answer, Extra []dns.RR
}

// Lookup answers the question (qname, qtype); qname is lower case and fully
// qualified, inside the zone.
func (idx *Index) Lookup(qname string, qtype uint16) Result {
	n := idx.names[qname]
	if n == nil {
		return Result{Rcode: dns.RcodeNameError}
	}
	return Result{Rcode: dns.RcodeSuccess, Answer: n.rrs[qtype], Extra: n.extra[qtype]}
}

// LookupReverse answers a question in a reverse zone (in-addr.arpa.,
// ip6.arpa.): PTR records of other clusters' addresses. The plugin is not
// authoritative there: an unknown name is NXDOMAIN, which the handler always
// passes on (to the kubernetes plugin, say).
func (idx *Index) LookupReverse(qname string, qtype uint16) Result {
	rrs, ok := idx.ptrs[qname]
	if !ok {
		return Result{Rcode: dns.RcodeNameError}
	}
	if qtype != dns.TypePTR {
		return Result{Rcode: dns.RcodeSuccess}
	}
	return Result{Rcode: dns.RcodeSuccess, Answer: rrs}
}

// SOA is the zone's SOA record, for the authority section of negative
// answers.
func (idx *Index) SOA() dns.RR { return idx.soa }

// Zone is the zone the index serves.
func (idx *Index) Zone() string { return idx.zone }

// Size is the number of owner names in the index.
func (idx *Index) Size() int { return len(idx.names) }

func anyReady(s *discoveryv1.EndpointSlice) bool {
	return slices.ContainsFunc(s.Endpoints, func(ep discoveryv1.Endpoint) bool { return ready(ep) && len(ep.Addresses) > 0 })
}

// ready follows the EndpointSlice API: a nil ready condition means ready.
func ready(ep discoveryv1.Endpoint) bool {
	return ep.Conditions.Ready == nil || *ep.Conditions.Ready
}
