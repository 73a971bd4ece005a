package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/internal/testinfra/dnstest"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestMain lets a test start this test binary as the kosmos command (with
// KOSMOS_TEST_MAIN=1): `kosmos dns` hands the process to CoreDNS, which reads
// os.Args and exits on its own terms, so it runs as a child process.
func TestMain(m *testing.M) {
	if os.Getenv("KOSMOS_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestDNSCommand runs `kosmos dns` with the shipped Corefile (ports moved to
// free loopback ones, the API server given as a kubeconfig) against a real
// API server, and asks it for a clusterset name (kosmos plugin) and a
// cluster-local one (CoreDNS's kubernetes plugin) over UDP and TCP.
func TestDNSCommand(t *testing.T) {
	env, c := dnstest.Cluster(t, filepath.Join("..", "..", "kustomize", "base", "crds"))
	ctx := context.Background()
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		&mcsv1a1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelTopology: "t"}},
			Spec: mcsv1a1.ServiceImportSpec{Type: mcsv1a1.ClusterSetIP, Ports: []mcsv1a1.ServicePort{{Name: "http", Protocol: "TCP", Port: 80}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "web-a", Namespace: "shop",
			Labels: map[string]string{mcsv1a1.LabelServiceName: "web", mcsv1a1.LabelSourceCluster: "a",
				v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelTopology: "t"},
			Annotations: map[string]string{v1alpha1.AnnotationServiceIPs: "10.0.0.10"}},
			AddressType: discoveryv1.AddressTypeIPv4, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}}}},
	} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	var kubeSvc corev1.Service // the API server's own Service, answered by the kubernetes plugin
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "kubernetes"}, &kubeSvc) == nil, nil
	})
	if err != nil {
		t.Fatalf("default/kubernetes Service never appeared: %v", err)
	}

	port, readyPort, metricsPort := dnstest.FreePort(t), dnstest.FreePort(t), dnstest.FreePort(t)
	corefile := shippedCorefile(t, port, readyPort, metricsPort, env.KubeconfigPath, "a")
	cmd := exec.Command(os.Args[0], "dns", "-conf", corefile)
	cmd.Env = append(os.Environ(), "KOSMOS_TEST_MAIN=1", "KOSMOS_CLUSTER=a")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for _, network := range []string{"udp", "tcp"} {
		for _, q := range []struct {
			name string
			want string
		}{
			{"web.shop.svc.clusterset.local.", "10.0.0.10"},
			{"kubernetes.default.svc.cluster.local.", kubeSvc.Spec.ClusterIP},
		} {
			var got []string
			var rcode int
			err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
				m := new(dns.Msg)
				m.SetQuestion(q.name, dns.TypeA)
				r, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(m, addr)
				if err != nil {
					return false, nil
				}
				rcode, got = r.Rcode, nil
				for _, rr := range r.Answer {
					if a, ok := rr.(*dns.A); ok {
						got = append(got, a.A.String())
					}
				}
				return rcode == dns.RcodeSuccess && slices.Equal(got, []string{q.want}), nil
			})
			if err != nil {
				t.Fatalf("%s A over %s: %s %v, want %s\nkosmos dns output:\n%s", q.name, network, dns.RcodeToString[rcode], got, q.want, out.String())
			}
		}
	}
	// Ready (every plugin, kosmos included), and the plugin's metrics.
	if code, body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/ready", readyPort)); code != 200 {
		t.Errorf("/ready: %d %s", code, body)
	}
	_, metrics := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if !strings.Contains(metrics, `coredns_kosmos_requests_total{rcode="NOERROR",server="dns://127.0.0.1:`) || !strings.Contains(metrics, "coredns_kosmos_index_names") {
		t.Errorf("/metrics lacks the kosmos plugin's request count:\n%s", metrics)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// shippedCorefile rewrites kustomize/base/dns/Corefile for a test: the
// server on 127.0.0.1:port, health/ready/metrics on free ports, and the
// kosmos and kubernetes plugins reaching the API server through kubeconfig.
func shippedCorefile(t *testing.T, port, readyPort, metricsPort int, kubeconfig, kctx string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "kustomize", "base", "dns", "Corefile"))
	if err != nil {
		t.Fatal(err)
	}
	kc := fmt.Sprintf("\n        kubeconfig %s %s", kubeconfig, kctx)
	r := strings.NewReplacer(
		".:53 {", fmt.Sprintf(".:%d {\n    bind 127.0.0.1", port),
		"health :8080", fmt.Sprintf("health 127.0.0.1:%d", dnstest.FreePort(t)),
		"ready :8181", fmt.Sprintf("ready 127.0.0.1:%d", readyPort),
		"prometheus :9153", fmt.Sprintf("prometheus 127.0.0.1:%d", metricsPort),
		"kosmos clusterset.local in-addr.arpa ip6.arpa {", "kosmos clusterset.local in-addr.arpa ip6.arpa {"+kc,
		"kubernetes cluster.local in-addr.arpa ip6.arpa {", "kubernetes cluster.local in-addr.arpa ip6.arpa {"+kc,
	)
	out := r.Replace(string(data))
	if strings.Count(out, kc) != 2 || !strings.Contains(out, "bind 127.0.0.1") {
		t.Fatalf("the shipped Corefile changed shape; update this test:\n%s", out)
	}
	path := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDNSHelp(t *testing.T) {
	code, out, _ := kosmos("dns", "--help")
	if code != 0 || !strings.Contains(out, "kosmos dns -conf") || !strings.Contains(out, "clusterset.local") {
		t.Errorf("exit %d, help:\n%s", code, out)
	}
}
