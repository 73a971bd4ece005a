package server

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/internal/testinfra/dnstest"
	"kosmos.io/kosmos/schema/v1alpha1"
)

func ptr[T any](v T) *T { return &v }

// managed adds the labels the Kosmos reconciler puts on what it writes.
func managed(l map[string]string) map[string]string {
	out := map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelTopology: "t"}
	for k, v := range l {
		out[k] = v
	}
	return out
}

// TestCoreDNSFromAPIServer runs CoreDNS with the kosmos plugin against a real
// API server: ServiceImports and EndpointSlices created there are answered
// over UDP and TCP, and changes (an endpoint turning unready, an import
// removed) reach the answers without a restart.
func TestCoreDNSFromAPIServer(t *testing.T) {
	env, c := dnstest.Cluster(t, filepath.Join("..", "..", "kustomize", "base", "crds"))
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}))
	// web's derived Service has no ClusterIP yet (no spec.ips): the service
	// addresses of the clusters with ready endpoints answer.
	must(c.Create(ctx, &mcsv1a1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Labels: managed(nil)},
		Spec: mcsv1a1.ServiceImportSpec{Type: mcsv1a1.ClusterSetIP, Ports: []mcsv1a1.ServicePort{{Name: "http", Protocol: "TCP", Port: 80}}}}))
	must(c.Create(ctx, &mcsv1a1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop", Labels: managed(nil)},
		Spec: mcsv1a1.ServiceImportSpec{Type: mcsv1a1.Headless, Ports: []mcsv1a1.ServicePort{{Name: "mysql", Protocol: "TCP", Port: 3306}}}}))
	slice := func(name, svc, cluster, ips string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop",
			Labels: managed(map[string]string{mcsv1a1.LabelServiceName: svc, mcsv1a1.LabelSourceCluster: cluster})},
			AddressType: discoveryv1.AddressTypeIPv4, Endpoints: eps}
		if ips != "" {
			s.Annotations = map[string]string{v1alpha1.AnnotationServiceIPs: ips}
		}
		return s
	}
	ready := discoveryv1.EndpointConditions{Ready: ptr(true)}
	webB := slice("web-b", "web", "b", "100.65.0.20", discoveryv1.Endpoint{Addresses: []string{"100.64.1.5"}, Conditions: ready})
	must(c.Create(ctx, slice("web-a", "web", "a", "10.96.0.10", discoveryv1.Endpoint{Addresses: []string{"10.244.0.5"}, Conditions: ready})))
	must(c.Create(ctx, webB))
	must(c.Create(ctx, slice("db-a", "db", "a", "", discoveryv1.Endpoint{Addresses: []string{"10.244.0.7"}, Hostname: ptr("db-0"), Conditions: ready})))
	must(c.Create(ctx, slice("db-b", "db", "b", "", discoveryv1.Endpoint{Addresses: []string{"100.64.1.9"}, Hostname: ptr("db-0"), Conditions: ready})))
	// Objects Kosmos did not write, MCS labels and all: never answered.
	must(c.Create(ctx, &mcsv1a1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Name: "rogue", Namespace: "shop"},
		Spec: mcsv1a1.ServiceImportSpec{Type: mcsv1a1.ClusterSetIP, IPs: []string{"10.96.6.6"}, Ports: []mcsv1a1.ServicePort{{Name: "http", Protocol: "TCP", Port: 80}}}}))
	rogue := func(s *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
		delete(s.Labels, v1alpha1.LabelManagedBy)
		return s
	}
	must(c.Create(ctx, rogue(slice("rogue-b", "rogue", "b", "10.96.6.7", discoveryv1.Endpoint{Addresses: []string{"100.64.6.6"}, Conditions: ready}))))
	must(c.Create(ctx, rogue(slice("web-x", "web", "x", "10.96.6.8", discoveryv1.Endpoint{Addresses: []string{"100.64.6.8"}, Conditions: ready}))))
	must(c.Create(ctx, rogue(slice("db-x", "db", "x", "", discoveryv1.Endpoint{Addresses: []string{"100.64.6.9"}, Hostname: ptr("db-0"), Conditions: ready}))))

	udp, tcp := startCoreDNS(t, env.KubeconfigPath, "a")

	for _, addr := range []struct{ net, addr string }{{"udp", udp}, {"tcp", tcp}} {
		t.Run(addr.net, func(t *testing.T) {
			expect := func(name string, qtype uint16, wantRcode int, want ...string) {
				t.Helper()
				rcode, got, err := dnstest.Query(addr.net, addr.addr, name, qtype)
				if err != nil {
					t.Fatal(err)
				}
				if rcode != wantRcode || !slices.Equal(got, want) {
					t.Errorf("%s %s over %s: %s %v, want %s %v", name, dns.TypeToString[qtype], addr.net, dns.RcodeToString[rcode], got, dns.RcodeToString[wantRcode], want)
				}
			}
			expect("web.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeSuccess, "10.96.0.10", "100.65.0.20")
			expect("web.shop.svc.clusterset.local.", dns.TypeAAAA, dns.RcodeSuccess)
			expect("_http._tcp.web.shop.svc.clusterset.local.", dns.TypeSRV, dns.RcodeSuccess, "80 web.shop.svc.clusterset.local.")
			expect("db.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeSuccess, "10.244.0.7", "100.64.1.9")
			expect("db-0.b.db.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeSuccess, "100.64.1.9")
			expect("_mysql._tcp.db.shop.svc.clusterset.local.", dns.TypeSRV, dns.RcodeSuccess, "3306 db-0.a.db.shop.svc.clusterset.local.", "3306 db-0.b.db.shop.svc.clusterset.local.")
			expect("dns-version.clusterset.local.", dns.TypeTXT, dns.RcodeSuccess, "1.0.0")
			expect("nope.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeNameError)
			expect("rogue.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeNameError)
			expect("db-0.x.db.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeNameError)
		})
	}

	// Cluster b's endpoint turns unready: its address leaves the answer.
	webB.Endpoints[0].Conditions.Ready = ptr(false)
	must(c.Update(ctx, webB))
	waitAnswer(t, "udp", udp, "web.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeSuccess, "10.96.0.10")
	// The import goes: NXDOMAIN.
	must(c.Delete(ctx, &mcsv1a1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}))
	waitAnswer(t, "tcp", tcp, "web.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeNameError)
}

// TestReverseZoneKubernetesFirst runs the kubernetes and kosmos plugins
// together, as the shipped Corefile does, against a real API server. A
// Kosmos-managed slice of another cluster claims the ClusterIP of a local
// Service: the reverse question for that address is still answered by the
// kubernetes plugin, with the Service's cluster.local name; the other
// cluster's global address gets its clusterset.local name from kosmos.
func TestReverseZoneKubernetesFirst(t *testing.T) {
	env, c := dnstest.Cluster(t, filepath.Join("..", "..", "kustomize", "base", "crds"))
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}))
	local := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "local", Namespace: "shop"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}}}
	must(c.Create(ctx, local))
	must(c.Create(ctx, &mcsv1a1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Name: "spoof", Namespace: "shop", Labels: managed(nil)},
		Spec: mcsv1a1.ServiceImportSpec{Type: mcsv1a1.ClusterSetIP, Ports: []mcsv1a1.ServicePort{{Name: "http", Protocol: "TCP", Port: 80}}}}))
	must(c.Create(ctx, &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "spoof-b", Namespace: "shop",
		Labels:      managed(map[string]string{mcsv1a1.LabelServiceName: "spoof", mcsv1a1.LabelSourceCluster: "b"}),
		Annotations: map[string]string{v1alpha1.AnnotationServiceIPs: local.Spec.ClusterIP + ",100.65.0.30"}},
		AddressType: discoveryv1.AddressTypeIPv4, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"100.64.1.5"}}}}))

	corefile := fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    kosmos clusterset.local in-addr.arpa ip6.arpa {
        kubeconfig %[1]s a
        cluster a
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %[1]s a
        fallthrough in-addr.arpa ip6.arpa
    }
}
`, env.KubeconfigPath)
	inst, err := Start(corefile)
	if err != nil {
		t.Fatalf("start CoreDNS: %v", err)
	}
	t.Cleanup(func() {
		if err := Stop(inst); err != nil {
			t.Errorf("stop CoreDNS: %v", err)
		}
	})
	udp, _ := Addrs(inst)
	waitAnswer(t, "udp", udp, "spoof.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeSuccess, local.Spec.ClusterIP, "100.65.0.30")
	waitAnswer(t, "udp", udp, "local.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, local.Spec.ClusterIP)
	rev := func(ip string) string {
		r, err := dns.ReverseAddr(ip)
		must(err)
		return r
	}
	waitAnswer(t, "udp", udp, rev("100.65.0.30"), dns.TypePTR, dns.RcodeSuccess, "spoof.shop.svc.clusterset.local.")
	waitAnswer(t, "udp", udp, rev(local.Spec.ClusterIP), dns.TypePTR, dns.RcodeSuccess, "local.shop.svc.cluster.local.")
}

// startCoreDNS starts CoreDNS with the kosmos plugin serving clusterset.local
// from the cluster behind context kctx, on free loopback ports, and waits
// until it is ready.
func startCoreDNS(t testing.TB, kubeconfig, kctx string) (udp, tcp string) {
	t.Helper()
	corefile := fmt.Sprintf(`clusterset.local:0 {
    bind 127.0.0.1
    kosmos {
        kubeconfig %s %s
        cluster %s
    }
}
`, kubeconfig, kctx, kctx)
	inst, err := Start(corefile)
	if err != nil {
		t.Fatalf("start CoreDNS: %v", err)
	}
	t.Cleanup(func() {
		if err := Stop(inst); err != nil {
			t.Errorf("stop CoreDNS: %v", err)
		}
	})
	udp, tcp = Addrs(inst)
	// Ready: the version record is answered (SERVFAIL until synced).
	err = wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		rcode, _, err := dnstest.Query("udp", udp, "dns-version.clusterset.local.", dns.TypeTXT)
		return err == nil && rcode == dns.RcodeSuccess, nil
	})
	if err != nil {
		t.Fatalf("CoreDNS on %s never answered dns-version: %v", udp, err)
	}
	return udp, tcp
}

// query asks one question and returns the rcode and the answer section as
// short strings (addresses, "port target" for SRV, text for TXT).

// waitAnswer waits (30s at most) until the question is answered as wanted.
func waitAnswer(t testing.TB, network, addr, name string, qtype uint16, wantRcode int, want ...string) {
	t.Helper()
	var rcode int
	var got []string
	var qerr error
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		rcode, got, qerr = dnstest.Query(network, addr, name, qtype)
		return qerr == nil && rcode == wantRcode && slices.Equal(got, want), nil
	})
	if err != nil {
		t.Fatalf("%s %s: last answer %s %v (err %v), want %s %v", name, dns.TypeToString[qtype], dns.RcodeToString[rcode], got, qerr, dns.RcodeToString[wantRcode], want)
	}
}
