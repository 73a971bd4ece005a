package translate

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestHostServiceReach: a host service range that overlaps no member range
// and is not mapped is reached as it is; one that overlaps the member's
// without a mapping, or one the host's GlobalCIDRs map (NETMAP would skip an
// iptables kube-proxy), is not reached: the copy keeps the member's DNS and
// links, with the reason.
func TestHostServiceReach(t *testing.T) {
	d := &HostDNS{Nameserver: "10.96.0.10", ClusterDomain: "cluster.local"}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "backend"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.3.4", ClusterIPs: []string{"10.96.3.4"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}}
	for _, tc := range []struct {
		name               string
		spec               v1alpha1.ClusterObjectSpec
		wantDNS, wantSvcIP string // "": none
		links              bool
		why                string
	}{
		{name: "kubeadm defaults on both sides, unmapped",
			spec: v1alpha1.ClusterObjectSpec{HostServiceCIDRs: []string{"10.96.0.0/12"}, ServiceCIDRs: []string{"10.96.0.0/12"}},
			why:  "host 10.96.0.0/12 overlaps member 10.96.0.0/12"},
		{name: "partial overlap, unmapped",
			spec: v1alpha1.ClusterObjectSpec{HostServiceCIDRs: []string{"10.96.0.0/16"}, ServiceCIDRs: []string{"10.96.0.0/12"}},
			why:  "overlaps member"},
		{name: "overlapping, mapped by the host",
			spec: v1alpha1.ClusterObjectSpec{HostServiceCIDRs: []string{"10.96.0.0/12"}, ServiceCIDRs: []string{"10.96.0.0/12"},
				HostGlobalCIDRs: map[string]string{"10.96.0.0/12": "100.80.0.0/12", "10.244.0.0/16": "100.64.0.0/16"}},
			why: "map its service range (10.96.0.0/12)"},
		{name: "disjoint, mapped by the host",
			spec: v1alpha1.ClusterObjectSpec{HostServiceCIDRs: []string{"10.96.0.0/12"}, ServiceCIDRs: []string{"10.112.0.0/12"},
				HostGlobalCIDRs: map[string]string{"10.96.0.0/12": "100.80.0.0/12"}},
			why: "not reached from members yet"},
		{name: "disjoint ranges",
			spec:    v1alpha1.ClusterObjectSpec{HostServiceCIDRs: []string{"10.96.0.0/12"}, ServiceCIDRs: []string{"10.112.0.0/12"}},
			wantDNS: "10.96.0.10", wantSvcIP: "10.96.3.4", links: true},
		{name: "ranges not stated",
			wantDNS: "10.96.0.10", wantSvcIP: "10.96.3.4", links: true},
		{name: "mapping of another range only",
			spec: v1alpha1.ClusterObjectSpec{HostServiceCIDRs: []string{"10.96.0.0/12"}, ServiceCIDRs: []string{"10.96.0.0/12"},
				HostGlobalCIDRs: map[string]string{"10.244.0.0/16": "100.64.0.0/16"}},
			why: "do not map it"},
	} {
		r := ParseHostServiceReach(&tc.spec)
		if !strings.Contains(r.Unreachable, tc.why) || (tc.why == "") != (r.Unreachable == "") {
			t.Errorf("%s: unreachable %q, want %q", tc.name, r.Unreachable, tc.why)
		}
		dns, svcs, links := HostServices(r, d, []*corev1.Service{svc})
		gotDNS := ""
		if dns != nil {
			gotDNS = dns.Nameserver
		}
		gotIP := ""
		if len(svcs) == 1 {
			gotIP = svcs[0].Spec.ClusterIP
			if svcs[0].Spec.ClusterIPs[0] != gotIP {
				t.Errorf("%s: clusterIPs %v, clusterIP %s", tc.name, svcs[0].Spec.ClusterIPs, gotIP)
			}
		}
		if gotDNS != tc.wantDNS || gotIP != tc.wantSvcIP || links != tc.links {
			t.Errorf("%s: dns %q service %q links %v, want %q %q %v", tc.name, gotDNS, gotIP, links, tc.wantDNS, tc.wantSvcIP, tc.links)
		}
		if tc.links {
			env := ServiceEnv("shop", svcs)
			if len(env) == 0 || env[0].Name != "BACKEND_PORT" && env[0].Name != "BACKEND_SERVICE_HOST" {
				t.Errorf("%s: env %v", tc.name, env)
			}
			for _, e := range env {
				if e.Name == "BACKEND_SERVICE_HOST" && e.Value != tc.wantSvcIP {
					t.Errorf("%s: %s=%s", tc.name, e.Name, e.Value)
				}
			}
		}
	}
	if svc.Spec.ClusterIP != "10.96.3.4" {
		t.Error("the host's Service was changed")
	}
}
