// This file decides which addresses a member may report for its pods. The
// member is not trusted with the host's Services: an address it reports
// becomes an endpoint of every Service that selects the host pod, so a
// member that lies could point them anywhere. Only addresses inside the
// member's pod CIDRs (stated by the topology, not by the member) pass,
// translated through its GlobalCIDRs.

package translate

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"kosmos.io/kosmos/internal/globalip"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// MemberNetwork is what the host knows of a member's pod addresses: its
// pod CIDRs (real ranges) and their GlobalCIDR mapping.
type MemberNetwork struct {
	PodCIDRs []netip.Prefix
	Global   globalip.Map
}

// ParseMemberNetwork reads the Cluster object's pod CIDRs and GlobalCIDRs;
// the error names what could not be read (that part is left out, which
// only ever refuses more).
func ParseMemberNetwork(spec *v1alpha1.ClusterObjectSpec) (MemberNetwork, error) {
	gm, err := globalip.Parse(spec.GlobalCIDRs)
	out := MemberNetwork{Global: gm}
	var bad []string
	for _, s := range spec.PodCIDRs {
		p, perr := netip.ParsePrefix(s)
		if perr != nil {
			bad = append(bad, s)
			continue
		}
		out.PodCIDRs = append(out.PodCIDRs, p.Masked())
	}
	if len(bad) > 0 {
		err = fmt.Errorf("pod CIDRs %v are not CIDRs (%v)", bad, err)
	}
	return out, err
}

// holds tells whether one of the pod CIDRs holds address s.
func (n MemberNetwork) holds(s string) bool {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return false
	}
	a = a.Unmap()
	return slices.ContainsFunc(n.PodCIDRs, func(p netip.Prefix) bool { return p.Contains(a) })
}

// podIPs keeps the reported pod IPs the member's pod CIDRs hold,
// translated to their global addresses, and returns the others as
// refused. PodIP is the first kept address (the API wants podIPs[0] ==
// podIP).
func (n MemberNetwork) podIPs(st *corev1.PodStatus) (refused []string) {
	reported := st.PodIPs
	if len(reported) == 0 && st.PodIP != "" {
		reported = []corev1.PodIP{{IP: st.PodIP}}
	}
	var kept []corev1.PodIP
	for _, ip := range reported {
		if !n.holds(ip.IP) {
			refused = append(refused, ip.IP)
			continue
		}
		kept = append(kept, corev1.PodIP{IP: n.Global.ToGlobalString(ip.IP)})
	}
	st.PodIPs, st.PodIP = kept, ""
	if len(kept) > 0 {
		st.PodIP = kept[0].IP
	}
	return refused
}

// hostIPs keeps the reported host IPs that are unicast addresses (no
// loopback, link-local, multicast or unspecified address: nothing a
// member node can have) and returns the others as refused.
func hostIPs(st *corev1.PodStatus) (refused []string) {
	ok := func(s string) bool {
		a, err := netip.ParseAddr(s)
		return err == nil && a.Unmap().IsGlobalUnicast()
	}
	reported := st.HostIPs
	if len(reported) == 0 && st.HostIP != "" {
		reported = []corev1.HostIP{{IP: st.HostIP}}
	}
	var kept []corev1.HostIP
	for _, ip := range reported {
		if ok(ip.IP) {
			kept = append(kept, ip)
		} else {
			refused = append(refused, ip.IP)
		}
	}
	st.HostIPs, st.HostIP = kept, ""
	if len(kept) > 0 {
		st.HostIP = kept[0].IP
	}
	return refused
}
