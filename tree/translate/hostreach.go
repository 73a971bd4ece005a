// This file decides how member copies reach the host's Services (the
// host's cluster DNS among them, hostservices.go): a host ClusterIP is the
// host's real address, and members often use the same service range
// (kubeadm's 10.96.0.0/12 everywhere), where it would reach the member's
// own kube-dns or Service. A host service range that overlaps no member
// service range and is not mapped is reached as it is. The others are not
// reached at all: copies then keep the member's DNS and service links, and
// an event says why. That covers a range that overlaps a member's without a
// mapping, and a range the host's GlobalCIDRs map: the agent's 1:1 NAT
// (NETMAP in nat PREROUTING) ends the nat table for the connection, so an
// iptables kube-proxy never translates the ClusterIP to an endpoint, and
// the host's DNS answers real ClusterIPs anyway (a DNS that answered the
// global ones is future work).

package translate

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"kosmos.io/kosmos/internal/globalip"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// HostServiceReach is how a member's copies reach host Service addresses.
type HostServiceReach struct {
	// Global maps the host's real ranges to global ones.
	Global globalip.Map
	// Unreachable, when not empty, says why host Service addresses are not
	// reached from this member.
	Unreachable string
}

// ParseHostServiceReach reads the host's service ranges and mappings and
// the member's service ranges from a Cluster object's spec.
func ParseHostServiceReach(spec *v1alpha1.ClusterObjectSpec) HostServiceReach {
	gm, gerr := globalip.Parse(spec.HostGlobalCIDRs)
	r := HostServiceReach{Global: gm}
	member := prefixes(spec.ServiceCIDRs)
	var clash, mapped []string
	for _, h := range prefixes(spec.HostServiceCIDRs) {
		if gm.ToGlobal(h.Addr()) != h.Addr() || gm.ToGlobal(lastAddr(h)) != lastAddr(h) {
			mapped = append(mapped, h.String())
			continue
		}
		for _, mp := range member {
			if mp.Overlaps(h) {
				clash = append(clash, fmt.Sprintf("host %s overlaps member %s", h, mp))
			}
		}
	}
	if len(mapped) > 0 {
		r.Unreachable = fmt.Sprintf("the host's globalCIDRs map its service range (%s): ClusterLink's 1:1 NAT of a service address skips an iptables kube-proxy's translation and the host's DNS answers real addresses, so mapped host Services are not reached from members yet", strings.Join(mapped, ", "))
		return r
	}
	if len(clash) > 0 {
		r.Unreachable = fmt.Sprintf("the host's service range is the member's too (%s) and the host's globalCIDRs do not map it", strings.Join(clash, ", "))
		if gerr != nil {
			r.Unreachable += " (" + gerr.Error() + ")"
		}
	}
	return r
}

// Address is where a copy reaches host Service address ip: its global
// address when a host mapping holds it, else ip itself.
func (r HostServiceReach) Address(ip string) string {
	return r.Global.ToGlobalString(ip)
}

// HostServices applies r to the host's cluster DNS d and the host's
// Services of a copy's namespace: the DNS to use (nil: the member's) and
// the Services with the addresses the copy reaches them at (nil with links
// false: the member's own service links stay).
func HostServices(r HostServiceReach, d *HostDNS, services []*corev1.Service) (dns *HostDNS, reached []*corev1.Service, links bool) {
	if r.Unreachable != "" {
		return nil, nil, false
	}
	if d != nil {
		dd := *d
		dd.Nameserver = r.Address(d.Nameserver)
		dns = &dd
	}
	for _, s := range services {
		c := s.DeepCopy()
		if c.Spec.ClusterIP != "" && c.Spec.ClusterIP != corev1.ClusterIPNone {
			c.Spec.ClusterIP = r.Address(c.Spec.ClusterIP)
		}
		for i, ip := range c.Spec.ClusterIPs {
			if ip != corev1.ClusterIPNone {
				c.Spec.ClusterIPs[i] = r.Address(ip)
			}
		}
		reached = append(reached, c)
	}
	return dns, reached, true
}

func prefixes(ss []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// lastAddr is the last address of prefix p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
