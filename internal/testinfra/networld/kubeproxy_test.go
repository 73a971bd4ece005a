package networld

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"kosmos.io/kosmos/internal/testinfra/golden"
)

func ptrOf[T any](v T) *T { return &v }

// TestProxyServicesOf: per ClusterIP and port, the ready endpoints (no
// condition counts as ready) at the slice's port of the same name.
func TestProxyServicesOf(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIPs: []string{"10.0.1.7", "fd00:1::7", "bad"}, Ports: []corev1.ServicePort{
		{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)},
		{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(53)},
	}}}
	eps := []discoveryv1.EndpointSlice{{
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptrOf("http"), Port: ptrOf(int32(8080))}, {Name: ptrOf("dns"), Port: ptrOf(int32(53))}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.20.1.2"}}, {Addresses: []string{"100.64.1.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptrOf(true)}},
			{Addresses: []string{"10.99.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptrOf(false)}}},
	}, {
		AddressType: discoveryv1.AddressTypeIPv6,
		Ports:       []discoveryv1.EndpointPort{{Name: ptrOf("http"), Port: ptrOf(int32(8080))}, {Name: ptrOf("nameless")}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"fd20::2", "not-an-ip"}}},
	}}
	var got []string
	for _, s := range ProxyServicesOf(svc, eps) {
		for _, p := range s.Ports {
			var ts []string
			for _, tg := range p.Targets {
				ts = append(ts, tg.String())
			}
			got = append(got, fmt.Sprintf("%s %s/%d → %s", s.VIP, p.Proto, p.Port, strings.Join(ts, ",")))
		}
	}
	want := []string{
		"10.0.1.7 TCP/80 → 10.20.1.2:8080,100.64.1.2:8080,[fd20::2]:8080",
		"10.0.1.7 UDP/53 → 10.20.1.2:53,100.64.1.2:53",
		"fd00:1::7 TCP/80 → 10.20.1.2:8080,100.64.1.2:8080,[fd20::2]:8080",
		"fd00:1::7 UDP/53 → 10.20.1.2:53,100.64.1.2:53",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestProxyRules renders kube-proxy's own chains (the packet tests') and
// the sandbox's probe chains (inserted first, no hairpin masquerade; with
// the cluster's pod ranges, the host network's masquerade) for
// both families; targets of the other family are left out, a VIP without
// endpoints keeps its match, no port of the family renders nothing.
// testdata/proxyrules/*.golden (go test -update rewrites them).
func TestProxyRules(t *testing.T) {
	svcs := []ProxyService{
		{VIP: netip.MustParseAddr("10.0.1.7"), Ports: []ProxyPort{
			{Proto: corev1.ProtocolTCP, Port: 4890, Targets: []netip.AddrPort{netip.MustParseAddrPort("100.64.1.2:4890"), netip.MustParseAddrPort("[fd30::2]:4890"), netip.MustParseAddrPort("10.20.1.2:4890")}},
			{Proto: corev1.ProtocolUDP, Port: 4890, Targets: []netip.AddrPort{netip.MustParseAddrPort("100.64.1.2:4890")}},
		}},
		{VIP: netip.MustParseAddr("fd00:1::7"), Ports: []ProxyPort{{Proto: corev1.ProtocolTCP, Port: 4890}}},
	}
	probe := ProxyChains{Root: "KPROBE-r", Service: "KPROBE-r-", Endpoint: "KPROBE-r-", First: true}
	// kube-proxy's --cluster-cidr: the host network's connections to a
	// VIP are masqueraded (one range per family, the first counts).
	withCIDRs := probe
	withCIDRs.ClusterCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd44::/48"), netip.MustParsePrefix("10.245.0.0/16")}
	withCIDRs.Mark, withCIDRs.Post = "KPROBE-r-MARK", "KPROBE-r-POST"
	for _, tc := range []struct {
		name   string
		chains ProxyChains
		svcs   []ProxyService
		v6     bool
	}{
		{"kube-proxy-v4", KubeProxyChains, svcs, false},
		{"kube-proxy-v6", KubeProxyChains, svcs, true},
		{"probe-v4", probe, svcs, false},
		{"probe-v6", probe, svcs, true},
		{"probe-v4-none", probe, svcs[1:], false},
		{"kube-proxy-none", KubeProxyChains, nil, true},
		{"probe-v4-cluster-cidr", withCIDRs, svcs, false},
		{"probe-v6-cluster-cidr", withCIDRs, svcs, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden.Assert(t, "testdata/proxyrules/"+tc.name+".golden", []byte(ProxyRules(tc.chains, tc.svcs, tc.v6)))
		})
	}
}
