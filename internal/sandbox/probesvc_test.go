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
	"kosmos.io/kosmos/internal/testinfra/networld"
)

// TestProbeSlicesAndProxyServices: the slices the sandbox writes for a
// probe Service carry its endpoint's addresses at the echo port, and
// networld.ProxyServicesOf reads ready endpoints back by port name (the
// rules it renders from them: networld's TestProxyRules, probe-*).
func TestProbeSlicesAndProxyServices(t *testing.T) {
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
	got := networld.ProxyServicesOf(derived, slices)
	var s []string
	for _, n := range got {
		for _, p := range n.Ports {
			for _, tg := range p.Targets {
				s = append(s, n.VIP.String()+" "+string(p.Proto)+" "+tg.String())
			}
		}
	}
	if want := "10.0.1.7 TCP 10.20.1.2:4890,10.0.1.7 TCP [fd20::2]:4890"; strings.Join(s, ",") != want {
		t.Errorf("ProxyServicesOf: %s, want %s", strings.Join(s, ","), want)
	}
}
