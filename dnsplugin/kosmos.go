package dnsplugin

import (
	"context"
	"sync/atomic"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// Name is the plugin's name in a Corefile.
const Name = "kosmos"

// Kosmos is the CoreDNS handler answering the multi-cluster zone from the
// in-memory Index; the index is rebuilt by the watcher when ServiceImports or
// EndpointSlices change, so a query never reaches the API server.
type Kosmos struct {
	// Next is the next plugin in the chain.
	Next plugin.Handler
	// Zones served, fully qualified and lower case.
	Zones []string
	// Fall says which names NXDOMAIN answers pass on to the next plugin.
	Fall fall.F
	// TTL of every record.
	TTL uint32
	// Cluster is the name of the cluster this server runs in (its endpoints
	// come first); empty orders clusters by name only.
	Cluster string
	// Kubeconfig and Context reach the API server; both empty means the
	// in-cluster configuration.
	Kubeconfig, Context string

	indexes atomic.Pointer[map[string]*Index]
	synced  atomic.Bool
	stop    context.CancelFunc
}

// Name implements plugin.Handler.
func (k *Kosmos) Name() string { return Name }

// ServeDNS implements plugin.Handler.
func (k *Kosmos) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	qname := state.Name()
	zone := plugin.Zones(k.Zones).Matches(qname)
	if zone == "" {
		return plugin.NextOrFailure(k.Name(), k.Next, ctx, w, r)
	}
	reverse := isReverse(zone)
	idxs := k.indexes.Load()
	var idx *Index
	if idxs != nil {
		if reverse {
			idx = (*idxs)[k.forwardZone()]
		} else {
			idx = (*idxs)[zone]
		}
	}
	if idx == nil { // not synced yet: no answer is better than a wrong one
		if reverse {
			return plugin.NextOrFailure(k.Name(), k.Next, ctx, w, r)
		}
		countRequest(ctx, state, dns.RcodeServerFailure)
		return dns.RcodeServerFailure, nil
	}
	var res Result
	if reverse {
		res = idx.LookupReverse(qname, state.QType())
	} else {
		res = idx.Lookup(qname, state.QType())
	}
	if res.Rcode == dns.RcodeNameError && (reverse || k.Fall.Through(qname)) {
		return plugin.NextOrFailure(k.Name(), k.Next, ctx, w, r)
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.Rcode = res.Rcode
	// Copies: later plugins (cache, loadbalance) change records in place,
	// and the index is shared by every query.
	m.Answer = copyRRs(res.Answer)
	m.Extra = copyRRs(res.Extra)
	if len(m.Answer) == 0 {
		soa := dns.Copy(idx.SOA())
		soa.Header().Name = zone
		m.Ns = []dns.RR{soa}
	}
	if err := w.WriteMsg(m); err != nil {
		return dns.RcodeServerFailure, plugin.Error(Name, err)
	}
	countRequest(ctx, state, res.Rcode)
	return dns.RcodeSuccess, nil
}

func copyRRs(in []dns.RR) []dns.RR {
	if len(in) == 0 {
		return nil
	}
	out := make([]dns.RR, len(in))
	for i, rr := range in {
		out[i] = dns.Copy(rr)
	}
	return out
}

func countRequest(ctx context.Context, state request.Request, rcode int) {
	requestCount.WithLabelValues(metrics.WithServer(ctx), state.Type(), dns.RcodeToString[rcode]).Inc()
}

// isReverse tells the reverse zones (in-addr.arpa., ip6.arpa. and below).
func isReverse(zone string) bool {
	return dns.IsSubDomain("in-addr.arpa.", zone) || dns.IsSubDomain("ip6.arpa.", zone)
}

// forwardZone is the first zone that is not a reverse one: the index that
// holds the PTR records.
func (k *Kosmos) forwardZone() string {
	for _, z := range k.Zones {
		if !isReverse(z) {
			return z
		}
	}
	return ""
}

// setIndexes makes a new set of indexes (by zone) current.
func (k *Kosmos) setIndexes(m map[string]*Index) { k.indexes.Store(&m) }
