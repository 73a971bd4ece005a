package sandbox

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"kosmos.io/kosmos/internal/probe"
)

func TestNatRules(t *testing.T) {
	svcs := []natService{
		{VIP: netip.MustParseAddr("10.0.1.7"), Ports: []natPort{
			{Proto: corev1.ProtocolTCP, Port: 4890, Targets: []netip.AddrPort{netip.MustParseAddrPort("100.64.1.2:4890"), netip.MustParseAddrPort("[fd30::2]:4890"), netip.MustParseAddrPort("10.20.1.2:4890")}},
			{Proto: corev1.ProtocolUDP, Port: 4890, Targets: []netip.AddrPort{netip.MustParseAddrPort("100.64.1.2:4890")}},
		}},
		{VIP: netip.MustParseAddr("fd00:1::7"), Ports: []natPort{{Proto: corev1.ProtocolTCP, Port: 4890}}},
	}
	tests := []struct {
		name string
		svcs []natService
		v6   bool
		want string
	}{{
		name: "IPv4: a jump first in PREROUTING and OUTPUT, the VIP's ports, endpoints of the family balanced",
		svcs: svcs,
		want: `*nat
:KPROBE-r - [0:0]
:KPROBE-r-0 - [0:0]
:KPROBE-r-0-0 - [0:0]
:KPROBE-r-0-1 - [0:0]
:KPROBE-r-1 - [0:0]
:KPROBE-r-1-0 - [0:0]
-I PREROUTING 1 -j KPROBE-r
-I OUTPUT 1 -j KPROBE-r
-A KPROBE-r -d 10.0.1.7/32 -p tcp --dport 4890 -j KPROBE-r-0
-A KPROBE-r-0 -m statistic --mode random --probability 0.50000 -j KPROBE-r-0-0
-A KPROBE-r-0-0 -p tcp -j DNAT --to-destination 100.64.1.2:4890
-A KPROBE-r-0 -j KPROBE-r-0-1
-A KPROBE-r-0-1 -p tcp -j DNAT --to-destination 10.20.1.2:4890
-A KPROBE-r -d 10.0.1.7/32 -p udp --dport 4890 -j KPROBE-r-1
-A KPROBE-r-1 -j KPROBE-r-1-0
-A KPROBE-r-1-0 -p udp -j DNAT --to-destination 100.64.1.2:4890
COMMIT
`,
	}, {
		name: "IPv6: a VIP without endpoints still gets its match (kube-proxy would reject; nothing answers)",
		svcs: svcs, v6: true,
		want: `*nat
:KPROBE-r - [0:0]
:KPROBE-r-0 - [0:0]
-I PREROUTING 1 -j KPROBE-r
-I OUTPUT 1 -j KPROBE-r
-A KPROBE-r -d fd00:1::7/128 -p tcp --dport 4890 -j KPROBE-r-0
COMMIT
`,
	}, {
		name: "nothing of the family: nothing to restore",
		svcs: svcs[1:],
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := natRules("KPROBE-r", tc.svcs, tc.v6); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestProbeSlicesAndNatOf: the slices the sandbox writes for a probe
// Service carry its endpoint's addresses at the echo port, and natOf reads
// ready endpoints back by port name.
func TestProbeSlicesAndNatOf(t *testing.T) {
	svc := probe.ProbeService("kosmos-probe", "r", "b", 4890)
	ep := probe.Endpoint{Cluster: "b", Net: probe.PodNet, Addrs: []netip.Addr{netip.MustParseAddr("10.20.1.2"), netip.MustParseAddr("fd20::2")}}
	objs := probeSlices(svc, ep)
	if len(objs) != 2 {
		t.Fatalf("%d slices, want one per family", len(objs))
	}
	var slices []discoveryv1.EndpointSlice
	for _, o := range objs {
		s := o.(*discoveryv1.EndpointSlice)
		if s.Labels[discoveryv1.LabelServiceName] != svc.Name || s.Labels[probe.LabelRun] != "r" {
			t.Errorf("slice %s: labels %v", s.Name, s.Labels)
		}
		slices = append(slices, *s)
	}
	notReady := false
	slices = append(slices, discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4, Ports: slices[0].Ports,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.99.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &notReady}}}})
	derived := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "d"}, Spec: corev1.ServiceSpec{ClusterIPs: []string{"10.0.1.7"},
		Ports: []corev1.ServicePort{{Name: "echo-tcp", Protocol: corev1.ProtocolTCP, Port: 4890, TargetPort: intstr.FromInt32(4890)}}}}
	got := natOf(derived, slices)
	var s []string
	for _, n := range got {
		for _, p := range n.Ports {
			for _, tg := range p.Targets {
				s = append(s, n.VIP.String()+" "+string(p.Proto)+" "+tg.String())
			}
		}
	}
	if want := "10.0.1.7 TCP 10.20.1.2:4890,10.0.1.7 TCP [fd20::2]:4890"; strings.Join(s, ",") != want {
		t.Errorf("natOf: %s, want %s", strings.Join(s, ","), want)
	}
}
