package networld

// The nat rules kube-proxy's iptables mode writes, for packet worlds that
// run no kube-proxy: the packet tests (vip_test.go, hostservice_test.go)
// and the sandbox's probe services (internal/sandbox/probesvc.go) render
// them here, from a Service and its EndpointSlices.

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// ProxyService is one VIP of a Service as kube-proxy programs it: per port
// the endpoints it balances over.
type ProxyService struct {
	VIP   netip.Addr
	Ports []ProxyPort
}

// ProxyPort is one port of a VIP and its endpoints.
type ProxyPort struct {
	Proto   corev1.Protocol
	Port    int32
	Targets []netip.AddrPort
}

// ProxyChains names and hooks the chains ProxyRules writes.
type ProxyChains struct {
	// Root is jumped to from PREROUTING and OUTPUT; it matches each VIP
	// and port.
	Root string
	// Service and Endpoint prefix the chain of the n-th port (Service+"n")
	// and of its j-th endpoint (Endpoint+"n-j").
	Service, Endpoint string
	// First inserts the jumps to Root at the top of PREROUTING and OUTPUT
	// (-I 1) rather than appending them.
	First bool
	// Hairpin adds kube-proxy's masquerade of a pod reaching itself
	// through the VIP: Mark marks it in the endpoint's chain, Post (jumped
	// to from POSTROUTING) masquerades it.
	Hairpin bool
	// ClusterCIDRs are the cluster's pod ranges (kube-proxy's
	// --cluster-cidr, one per family; the first of a family counts): a
	// connection to a VIP from any other source, the node's own host
	// network above all, is marked and masqueraded like a hairpin, as
	// kube-proxy's local traffic detector does. Without it, host traffic
	// DNATed to a remote endpoint keeps the node's underlay address, and
	// the endpoint's replies may take another way back.
	ClusterCIDRs []netip.Prefix
	// Mark and Post name the masquerade's chains (KUBE-MARK-MASQ and
	// KUBE-POSTROUTING in kube-proxy); used by Hairpin and ClusterCIDRs.
	Mark, Post string
}

// KubeProxyChains are kube-proxy's own chain names and hooks (one
// Service per rendering: the port chains are numbered per rendering).
var KubeProxyChains = ProxyChains{Root: "KUBE-SERVICES", Service: "KUBE-SVC-", Endpoint: "KUBE-SEP-", Hairpin: true,
	Mark: "KUBE-MARK-MASQ", Post: "KUBE-POSTROUTING"}

// ProxyServicesOf is what kube-proxy programs for a Service and its
// EndpointSlices: per ClusterIP and port, the ready endpoints' addresses at
// the slices' port of the same name. Pure.
func ProxyServicesOf(svc *corev1.Service, eps []discoveryv1.EndpointSlice) []ProxyService {
	var out []ProxyService
	for _, ip := range svc.Spec.ClusterIPs {
		vip, err := netip.ParseAddr(ip)
		if err != nil {
			continue
		}
		ps := ProxyService{VIP: vip}
		for _, sp := range svc.Spec.Ports {
			p := ProxyPort{Proto: sp.Protocol, Port: sp.Port}
			for _, s := range eps {
				i := slices.IndexFunc(s.Ports, func(ep discoveryv1.EndpointPort) bool { return ep.Name != nil && *ep.Name == sp.Name && ep.Port != nil })
				if i < 0 {
					continue
				}
				for _, e := range s.Endpoints {
					if e.Conditions.Ready != nil && !*e.Conditions.Ready {
						continue
					}
					for _, a := range e.Addresses {
						if addr, err := netip.ParseAddr(a); err == nil {
							p.Targets = append(p.Targets, netip.AddrPortFrom(addr, uint16(*s.Ports[i].Port)))
						}
					}
				}
			}
			ps.Ports = append(ps.Ports, p)
		}
		out = append(out, ps)
	}
	return out
}

// ProxyRules renders, for iptables-restore --noflush of one family, the
// nat rules kube-proxy's iptables mode writes for svcs: the jumps to
// c.Root; per VIP and port a match to the port's chain, which picks an
// endpoint with the statistic module (1/n, then 1/(n-1), …) and jumps to
// the endpoint's chain, which DNATs to it. VIPs and targets of the other
// family are left out; "" when no port is left. Pure.
func ProxyRules(c ProxyChains, svcs []ProxyService, v6 bool) string {
	chains := []string{c.Root}
	hook := "-A "
	if c.First {
		hook = "-I "
	}
	first := ""
	if c.First {
		first = " 1"
	}
	rules := []string{hook + "PREROUTING" + first + " -j " + c.Root, hook + "OUTPUT" + first + " -j " + c.Root}
	outside := ""
	if i := slices.IndexFunc(c.ClusterCIDRs, func(p netip.Prefix) bool { return p.Addr().Is6() == v6 }); i >= 0 {
		outside = c.ClusterCIDRs[i].Masked().String()
	}
	if c.Hairpin || outside != "" {
		chains = append(chains, c.Mark, c.Post)
		rules = append(rules, hook+"POSTROUTING"+first+" -j "+c.Post,
			"-A "+c.Mark+" -j MARK --or-mark 0x4000",
			"-A "+c.Post+" -m mark ! --mark 0x4000/0x4000 -j RETURN",
			"-A "+c.Post+" -j MARK --xor-mark 0x4000",
			"-A "+c.Post+" -j MASQUERADE")
	}
	n := 0
	for _, s := range svcs {
		if s.VIP.Is6() != v6 {
			continue
		}
		for _, p := range s.Ports {
			var targets []netip.AddrPort
			for _, t := range p.Targets {
				if t.Addr().Is6() == v6 {
					targets = append(targets, t)
				}
			}
			svc := fmt.Sprintf("%s%d", c.Service, n)
			proto := strings.ToLower(string(p.Proto))
			chains = append(chains, svc)
			vip := netip.PrefixFrom(s.VIP, s.VIP.BitLen())
			rules = append(rules, fmt.Sprintf("-A %s -d %s -p %s --dport %d -j %s", c.Root, vip, proto, p.Port, svc))
			if outside != "" {
				rules = append(rules, fmt.Sprintf("-A %s ! -s %s -d %s -p %s --dport %d -j %s", svc, outside, vip, proto, p.Port, c.Mark))
			}
			for j, t := range targets {
				sep := fmt.Sprintf("%s%d-%d", c.Endpoint, n, j)
				chains = append(chains, sep)
				if left := len(targets) - j; left > 1 {
					rules = append(rules, fmt.Sprintf("-A %s -m statistic --mode random --probability %.5f -j %s", svc, 1/float64(left), sep))
				} else {
					rules = append(rules, fmt.Sprintf("-A %s -j %s", svc, sep))
				}
				if c.Hairpin {
					rules = append(rules, fmt.Sprintf("-A %s -s %s -j %s", sep, netip.PrefixFrom(t.Addr(), t.Addr().BitLen()), c.Mark))
				}
				rules = append(rules, fmt.Sprintf("-A %s -p %s -j DNAT --to-destination %s", sep, proto, t))
			}
			n++
		}
	}
	if n == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("*nat\n")
	for _, ch := range chains {
		b.WriteString(":" + ch + " - [0:0]\n")
	}
	for _, r := range rules {
		b.WriteString(r + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
