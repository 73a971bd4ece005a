package probe

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/internal/globalip"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Net is the network a probe endpoint lives in.
type Net string

// The two networks of a cluster a probe starts from.
const (
	PodNet  Net = "pod"
	HostNet Net = "host"
)

// Proto is how a probe asks for an answer.
type Proto string

// The protocols of a probe.
const (
	ICMP Proto = "icmp"
	TCP  Proto = "tcp"
	UDP  Proto = "udp"
)

// Protos are all protocols, in the order the table shows them.
var Protos = []Proto{ICMP, TCP, UDP}

// Endpoint is a running probe endpoint: a pod (or a network namespace in
// the sandbox) of one cluster on its pod or host network, with its own
// addresses (as its cluster sees them).
type Endpoint struct {
	Cluster string
	Net     Net
	// Name says which pod or machine it is ("kosmos-probe-pod-x7k2f").
	Name  string
	Addrs []netip.Addr
}

// Probe is one question: from an endpoint to an address, by a protocol.
type Probe struct {
	From  Endpoint
	To    Endpoint
	Addr  netip.Addr // the address From reaches To by
	Proto Proto
	// Service is set for a probe of an exported service's address (Addr
	// is then a ClusterSetIP of From's cluster whose backend is To):
	// "namespace/name" of the ServiceImport. See services.go.
	Service string
}

// Result is a probe's answer: Err empty when it passed; Skip set when the
// probe could not be tried (ICMP not permitted in the pod).
type Result struct {
	Probe Probe
	Err   string
	Skip  string
}

// Plan lists every probe of the topology over the endpoints: for every
// ordered pair of different clusters, from each endpoint of the first to
// each pod-network endpoint of the second, at the address the sender
// reaches it by (the global one where the receiver's cluster maps its pod
// range), for every protocol; only where both have the address family.
func Plan(t *v1alpha1.KosmosTopology, eps []Endpoint, protos []Proto) []Probe {
	global := map[string]globalip.Map{}
	for _, c := range t.Spec.Clusters {
		global[c.Name], _ = globalip.Parse(c.Network.GlobalCIDRs)
	}
	var out []Probe
	for _, from := range t.Spec.Clusters {
		for _, to := range t.Spec.Clusters {
			if from.Name == to.Name {
				continue
			}
			for _, src := range eps {
				if src.Cluster != from.Name {
					continue
				}
				for _, dst := range eps {
					if dst.Cluster != to.Name || dst.Net != PodNet {
						continue
					}
					for _, a := range dst.Addrs {
						if !slices.ContainsFunc(src.Addrs, func(s netip.Addr) bool { return s.Is4() == a.Is4() }) {
							continue
						}
						addr := global[to.Name].ToGlobal(a)
						for _, p := range protos {
							out = append(out, Probe{From: src, To: dst, Addr: addr, Proto: p})
						}
					}
				}
			}
		}
	}
	return out
}

// Unreached are the pairs Plan cannot probe because an endpoint is
// missing (its probe pod never came up): for every ordered pair of
// different clusters and source network where the source or the
// receiver's pod endpoint is missing, one failed result saying which.
func Unreached(t *v1alpha1.KosmosTopology, eps []Endpoint) []Result {
	has := func(cluster string, net Net) bool {
		return slices.ContainsFunc(eps, func(e Endpoint) bool { return e.Cluster == cluster && e.Net == net })
	}
	var out []Result
	for _, from := range t.Spec.Clusters {
		for _, to := range t.Spec.Clusters {
			if from.Name == to.Name {
				continue
			}
			for _, net := range []Net{PodNet, HostNet} {
				var missing []string
				if !has(from.Name, net) {
					missing = append(missing, fmt.Sprintf("%s's %s-network probe", from.Name, net))
				}
				if !has(to.Name, PodNet) {
					missing = append(missing, fmt.Sprintf("%s's pod-network probe", to.Name))
				}
				if len(missing) > 0 {
					out = append(out, Result{
						Probe: Probe{From: Endpoint{Cluster: from.Name, Net: net}, To: Endpoint{Cluster: to.Name, Net: PodNet}},
						Err:   "not probed: no " + strings.Join(missing, ", no "),
					})
				}
			}
		}
	}
	return out
}

// pairKey is one row of the table: an ordered pair of clusters and the
// network the probes left from.
type pairKey struct {
	from, to string
	net      Net
	service  bool // the exported service's address, not the pod's
}

func (k pairKey) String() string {
	if k.service {
		return fmt.Sprintf("service %s/%s-net → %s", k.from, k.net, k.to)
	}
	return fmt.Sprintf("%s/%s-net → %s", k.from, k.net, k.to)
}

// Checks judges the results: one row per ordered pair of clusters and
// source network, "probe A/pod-net → B" ("probe service A/pod-net → B" for
// the probes of B's exported service from A), PASS when every probe of the row got
// its answer (skipped ones aside), FAIL naming what failed; then a last
// row naming every broken pair (PASS when there is none). Rows keep the
// order of the results.
func Checks(results []Result) []check.Check {
	var keys []pairKey
	rows := map[pairKey]*struct{ ok, failed, skipped []string }{}
	for _, r := range results {
		k := pairKey{r.Probe.From.Cluster, r.Probe.To.Cluster, r.Probe.From.Net, r.Probe.Service != ""}
		row, seen := rows[k]
		if !seen {
			row = &struct{ ok, failed, skipped []string }{}
			rows[k] = row
			keys = append(keys, k)
		}
		what := fmt.Sprintf("%s %s", r.Probe.Proto, r.Probe.Addr)
		if !r.Probe.Addr.IsValid() { // Unreached
			what = "-"
		}
		switch {
		case r.Skip != "":
			row.skipped = append(row.skipped, what+": "+r.Skip)
		case r.Err != "":
			row.failed = append(row.failed, what+": "+r.Err)
		default:
			row.ok = append(row.ok, what)
		}
	}
	var out []check.Check
	var broken []string
	for _, k := range keys {
		row := rows[k]
		c := check.Check{Name: "probe " + k.String(), Result: "PASS"}
		switch {
		case len(row.failed) > 0:
			c.Result, c.Detail = "FAIL", strings.Join(row.failed, "; ")
			broken = append(broken, k.String())
		case len(row.ok) == 0:
			c.Result, c.Detail = "SKIP", strings.Join(row.skipped, "; ")
		default:
			c.Detail = strings.Join(row.ok, ", ")
			if len(row.skipped) > 0 {
				c.Detail += " (skipped " + strings.Join(row.skipped, "; ") + ")"
			}
		}
		out = append(out, c)
	}
	sum := check.Check{Name: "probe broken pairs", Result: "PASS", Detail: fmt.Sprintf("none of %d", len(keys))}
	if len(broken) > 0 {
		sum.Result, sum.Detail = "FAIL", strings.Join(broken, ", ")
	}
	return append(out, sum)
}
