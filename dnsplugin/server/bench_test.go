package server

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/internal/testinfra/dnstest"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Benchmark shape: services in each zone, concurrent clients, queries per
// client per round.
const (
	benchServices = 200 // the test API server's service range is a /24
	benchClients  = 4
	benchRound    = 500
)

// BenchmarkDNSKosmosVsKubernetes measures A queries over UDP on loopback
// against the kosmos plugin (clusterset.local) and, in the same run and
// against the same real API server, CoreDNS's own kubernetes plugin
// (cluster.local), each with benchServices services, each with one ready
// endpoint. Rounds alternate between the two so that load from elsewhere on
// the machine hits both alike. Reported: queries per second and p99 latency
// of each, and kosmos/kubernetes ratios (qps-ratio ≥ 1 is the target).
func BenchmarkDNSKosmosVsKubernetes(b *testing.B) {
	env := testenv.StartT(b, testenv.Options{Names: []string{"a"}, CRDDirs: []string{filepath.Join("..", "..", "kustomize", "base", "crds")}})
	kosmosIPs, kubeIPs := benchObjects(b, env.Cluster("a").Config)
	kosmosAddr, _ := startBenchServer(b, fmt.Sprintf("clusterset.local:0 {\n bind 127.0.0.1\n kosmos {\n  kubeconfig %s a\n  cluster a\n }\n}\n", env.KubeconfigPath))
	kubeAddr, _ := startBenchServer(b, fmt.Sprintf("cluster.local:0 {\n bind 127.0.0.1\n kubernetes cluster.local {\n  kubeconfig %s a\n }\n}\n", env.KubeconfigPath))
	kosmosNames, kubeNames := make([]string, benchServices), make([]string, benchServices)
	for i := range benchServices {
		kosmosNames[i] = fmt.Sprintf("svc-%d.bench.svc.clusterset.local.", i)
		kubeNames[i] = fmt.Sprintf("svc-%d.bench.svc.cluster.local.", i)
	}
	// Both answer every name, correctly, before anything is timed.
	waitAllAnswered(b, kosmosAddr, kosmosNames, kosmosIPs)
	waitAllAnswered(b, kubeAddr, kubeNames, kubeIPs)

	var kosmos, kube loadResult
	b.ResetTimer()
	for b.Loop() {
		kosmos.add(load(b, kosmosAddr, kosmosNames))
		kube.add(load(b, kubeAddr, kubeNames))
	}
	b.StopTimer()
	kq, kp := kosmos.qps(), kosmos.p99()
	bq, bp := kube.qps(), kube.p99()
	b.ReportMetric(kq, "kosmos-qps")
	b.ReportMetric(bq, "kubernetes-qps")
	b.ReportMetric(kq/bq, "qps-ratio")
	b.ReportMetric(float64(kp.Microseconds()), "kosmos-p99-µs")
	b.ReportMetric(float64(bp.Microseconds()), "kubernetes-p99-µs")
	b.ReportMetric(float64(bp)/float64(kp), "p99-ratio(kube/kosmos)")
}

// benchObjects creates, in namespace bench, benchServices Services with an
// EndpointSlice each (cluster.local) and benchServices ServiceImports with an
// imported slice each (clusterset.local); it returns the A answer expected
// for every name of each zone.
func benchObjects(b *testing.B, cfg *rest.Config) (kosmosIPs, kubeIPs []string) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 1000, 1000
	s := scheme.Scheme
	if err := mcsv1a1.AddToScheme(s); err != nil {
		b.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}); err != nil {
		b.Fatal(err)
	}
	kosmosIPs, kubeIPs = make([]string, benchServices), make([]string, benchServices)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range benchServices {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("svc-%d", i)
			port := []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name}, Spec: corev1.ServiceSpec{Ports: port}}
			ep := []discoveryv1.Endpoint{{Addresses: []string{fmt.Sprintf("10.244.%d.%d", i/250, i%250+1)}}}
			kosmosIP := fmt.Sprintf("100.65.%d.%d", i/250, i%250+1)
			err := c.Create(ctx, svc)
			if err == nil {
				err = c.Create(ctx, &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name + "-local", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
					AddressType: discoveryv1.AddressTypeIPv4, Endpoints: ep})
			}
			if err == nil {
				err = c.Create(ctx, &mcsv1a1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name, Labels: managed(nil)},
					Spec: mcsv1a1.ServiceImportSpec{Type: mcsv1a1.ClusterSetIP, IPs: []string{kosmosIP}, Ports: []mcsv1a1.ServicePort{{Name: "http", Protocol: "TCP", Port: 80}}}})
			}
			if err == nil {
				err = c.Create(ctx, &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name + "-b",
					Labels:      managed(map[string]string{mcsv1a1.LabelServiceName: name, mcsv1a1.LabelSourceCluster: "b"}),
					Annotations: map[string]string{v1alpha1.AnnotationServiceIPs: kosmosIP}},
					AddressType: discoveryv1.AddressTypeIPv4, Endpoints: ep})
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			kosmosIPs[i], kubeIPs[i] = kosmosIP, svc.Spec.ClusterIP
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		b.Fatalf("create %d services: %v (and %d more)", benchServices, errs[0], len(errs)-1)
	}
	return kosmosIPs, kubeIPs
}

func startBenchServer(b *testing.B, corefile string) (udp, tcp string) {
	inst, err := Start(corefile)
	if err != nil {
		b.Fatalf("start CoreDNS: %v", err)
	}
	b.Cleanup(func() { _ = Stop(inst) })
	return Addrs(inst)
}

// waitAllAnswered waits (a minute at most) until every name is answered
// with its address.
func waitAllAnswered(b *testing.B, addr string, names, ips []string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i, n := range names {
		var rcode int
		var got []string
		var qerr error
		err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
			rcode, got, qerr = dnstest.Query("udp", addr, n, dns.TypeA)
			return qerr == nil && rcode == dns.RcodeSuccess && slices.Equal(got, []string{ips[i]}), nil
		})
		if err != nil {
			b.Fatalf("%s on %s: %s %v (err %v), want %s", n, addr, dns.RcodeToString[rcode], got, qerr, ips[i])
		}
	}
}

// loadResult accumulates the rounds of one server.
type loadResult struct {
	queries   int
	elapsed   time.Duration
	latencies []time.Duration
}

func (r *loadResult) add(o loadResult) {
	r.queries += o.queries
	r.elapsed += o.elapsed
	r.latencies = append(r.latencies, o.latencies...)
}

func (r *loadResult) qps() float64 { return float64(r.queries) / r.elapsed.Seconds() }

func (r *loadResult) p99() time.Duration {
	slices.Sort(r.latencies)
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[len(r.latencies)*99/100]
}

// load runs one round: benchClients clients, each over its own UDP socket,
// asking benchRound A questions in turn over the names, one at a time.
func load(b *testing.B, addr string, names []string) loadResult {
	var wg sync.WaitGroup
	lat := make([][]time.Duration, benchClients)
	errs := make([]error, benchClients)
	start := time.Now()
	for w := range benchClients {
		wg.Go(func() {
			co, err := dns.Dial("udp", addr)
			if err != nil {
				errs[w] = err
				return
			}
			defer co.Close()
			m := new(dns.Msg)
			for i := range benchRound {
				m.SetQuestion(names[(w*benchRound+i)%len(names)], dns.TypeA)
				t0 := time.Now()
				if err := co.WriteMsg(m); err != nil {
					errs[w] = err
					return
				}
				r, err := co.ReadMsg()
				if err != nil {
					errs[w] = err
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
				if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					errs[w] = fmt.Errorf("%s: %s with %d answers", names[(w*benchRound+i)%len(names)], dns.RcodeToString[r.Rcode], len(r.Answer))
					return
				}
			}
		})
	}
	wg.Wait()
	res := loadResult{elapsed: time.Since(start)}
	for w := range benchClients {
		if errs[w] != nil {
			b.Fatalf("client %d against %s: %v", w, addr, errs[w])
		}
		res.queries += len(lat[w])
		res.latencies = append(res.latencies, lat[w]...)
	}
	return res
}
