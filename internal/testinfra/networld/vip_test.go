package networld

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/reconciler/mcs"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// vipTopology: three dual-stack clusters; b and c export shop/web, c's IPv4
// pods reached by their GlobalCIDR images. Each API server allocates
// ClusterIPs of both families from the cluster's own service ranges.
const vipTopology = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: vip}
spec:
  clusters:
    - name: a
      role: host
      kubeconfig: {context: a}
      network: {ipFamily: DualStack, podCIDRs: [10.10.0.0/16, "fd10::/56"], serviceCIDRs: [10.0.1.0/24, "fd00:1::/112"]}
    - name: b
      role: member
      kubeconfig: {context: b}
      network: {ipFamily: DualStack, podCIDRs: [10.20.0.0/16, "fd20::/56"], serviceCIDRs: [10.0.2.0/24, "fd00:2::/112"]}
    - name: c
      role: member
      kubeconfig: {context: c}
      network:
        ipFamily: DualStack
        podCIDRs: [10.244.0.0/16, "fd30::/56"]
        serviceCIDRs: [10.0.3.0/24, "fd00:3::/112"]
        globalCIDRs: {10.244.0.0/16: 100.64.0.0/16}
`

// kubeProxyRules renders, for iptables-restore --noflush, the nat rules
// kube-proxy (iptables mode) writes for one Service of one family
// (ProxyRules with kube-proxy's chains, hairpin masquerade included), and
// the number of endpoints of the family it balances over.
func kubeProxyRules(svc *corev1.Service, eps []discoveryv1.EndpointSlice, v6 bool) (string, int) {
	svcs := ProxyServicesOf(svc, eps)
	total := 0
	for _, s := range svcs {
		if s.VIP.Is6() != v6 {
			continue
		}
		for _, p := range s.Ports {
			for _, t := range p.Targets {
				if t.Addr().Is6() == v6 {
					total++
				}
			}
		}
	}
	return ProxyRules(KubeProxyChains, svcs, v6), total
}

// serveName answers every TCP connection on port 8080 of a pod's namespace
// with name, until the test ends.
func serveName(t *testing.T, podNS, name string) {
	t.Helper()
	var ln net.Listener
	var err error
	inNS(t, podNS, func() { ln, err = net.Listen("tcp", ":8080") })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, name)
			c.Close()
		}
	}()
}

// askVIP connects from a pod to addr:port over TCP and returns what the
// server wrote.
func askVIP(t *testing.T, podNS string, to netip.AddrPort) (string, error) {
	t.Helper()
	var conn net.Conn
	var err error
	inNS(t, podNS, func() { conn, err = net.DialTimeout("tcp", to.String(), 3*time.Second) })
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(conn)
	return string(b), err
}

// TestClusterSetIPReachesEveryExporter is the data-plane proof of the
// ClusterSetIP VIP: three real API servers with dual-stack service ranges,
// the real reconciler writing the derived Service and its EndpointSlices in
// every cluster, the real agent's ClusterLink between the clusters' node
// namespaces, and in each cluster's node the DNAT rules kube-proxy would
// write from that Service and those slices. A TCP connection from a pod of
// every cluster to the VIP, of each family, reaches pods of both exporting
// clusters (c's IPv4 pod through its GlobalCIDR image).
func TestClusterSetIPReachesEveryExporter(t *testing.T) {
	requireRoot(t)
	names := []string{"a", "b", "c"}
	ranges := map[string]map[string]string{}
	for i, n := range names {
		ranges[n] = map[string]string{"service-cluster-ip-range": fmt.Sprintf("10.0.%d.0/24,fd00:%d::/112", i+1, i+1)}
	}
	env := testenv.StartT(t, testenv.Options{Names: names, CRDDirs: []string{filepath.Join("..", "..", "..", "kustomize", "base", "crds")}, ClusterArgs: ranges})
	clients := env.ClientsT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	nodes := []NodeSpec{
		dualNode("a", "a1", []string{"192.168.0.11/24", "fd00::11/64"}, []string{"10.10.1.0/24", "fd10:0:0:1::/64"}),
		dualNode("b", "b1", []string{"192.168.0.21/24", "fd00::21/64"}, []string{"10.20.1.0/24", "fd20:0:0:1::/64"}),
		dualNode("c", "c1", []string{"192.168.0.31/24", "fd00::31/64"}, []string{"10.244.1.0/24", "fd30:0:0:1::/64"}),
	}
	w, err := Build("kvip-", nodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Destroy)
	topo, p := plan(t, vipTopology, nodes)
	applyPlan(t, w, p)

	// b and c export shop/web: a dual-stack Service whose endpoint is the
	// pod of their node, port http 80 → 8080.
	http := "http"
	for _, n := range names {
		if err := clients[n].Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes[1:] {
		c := clients[n.Cluster]
		dual := corev1.IPFamilyPolicyRequireDualStack
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: corev1.ServiceSpec{IPFamilyPolicy: &dual,
			Ports: []corev1.ServicePort{{Name: http, Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
		objs := []client.Object{svc, &mcsv1a1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}}
		for i, fam := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
			port := int32(8080)
			objs = append(objs, &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: "web-" + strings.ToLower(string(fam)), Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
				AddressType: fam, Ports: []discoveryv1.EndpointPort{{Name: &http, Port: &port}},
				Endpoints: []discoveryv1.Endpoint{{Addresses: []string{PodIP(n.PodCIDRs[i]).String()}}},
			})
		}
		for _, o := range objs {
			if err := c.Create(ctx, o); err != nil {
				t.Fatalf("%s: %v", n.Cluster, err)
			}
		}
		if len(svc.Spec.ClusterIPs) != 2 {
			t.Fatalf("%s's API server gave web %v: want a dual-stack Service", n.Cluster, svc.Spec.ClusterIPs)
		}
		serveName(t, w.PodNS(n.Cluster, n.Name), n.Cluster)
	}

	dir := t.TempDir()
	topoPath := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(topoPath, []byte(vipTopology), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl := &reconciler.Controller{
		TopologyPath: topoPath,
		Connect: func(tp *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
			return reconciler.ConnectContexts(tp, env.KubeconfigPath)
		},
		Resync: time.Hour,
		Prune:  true,
		Log:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = ctl.Run(ctx) }()
	defer func() { cancel(); <-done }()

	derivedName := mcs.DerivedName("web")
	for _, n := range nodes {
		// Every exporter's endpoint, as this cluster addresses it: its
		// own by its real address, the others' by their global images.
		var want []string
		for _, e := range nodes[1:] {
			for i := range e.PodCIDRs {
				a := globalAddrOf(topo, e, i)
				if e.Cluster == n.Cluster {
					a = PodIP(e.PodCIDRs[i])
				}
				want = append(want, a.String())
			}
		}
		slices.Sort(want)
		c := clients[n.Cluster]
		var svc corev1.Service
		var eps discoveryv1.EndpointSliceList
		poll.NoError(t, time.Minute, n.Cluster+"'s derived Service with both families and every exporter's endpoints", func() error {
			if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: derivedName}, &svc); err != nil {
				return err
			}
			if len(svc.Spec.ClusterIPs) != 2 {
				return fmt.Errorf("ClusterIPs %v", svc.Spec.ClusterIPs)
			}
			var si mcsv1a1.ServiceImport
			if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, &si); err != nil {
				return err
			}
			if !slices.Equal(si.Spec.IPs, svc.Spec.ClusterIPs) {
				return fmt.Errorf("import's ips %v, Service's %v", si.Spec.IPs, svc.Spec.ClusterIPs)
			}
			if err := c.List(ctx, &eps, client.InNamespace("shop"), client.MatchingLabels{discoveryv1.LabelServiceName: derivedName}); err != nil {
				return err
			}
			var got []string
			for _, s := range eps.Items {
				for _, e := range s.Endpoints {
					got = append(got, e.Addresses...)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				return fmt.Errorf("endpoints %v, want %v", got, want)
			}
			return nil
		})
		// kube-proxy's part, from what the reconciler wrote.
		ns := w.NodeNS(n.Cluster, n.Name)
		for _, v6 := range []bool{false, true} {
			rules, count := kubeProxyRules(&svc, eps.Items, v6)
			if count != 2 {
				t.Fatalf("%s: %d endpoints of the family (v6 %v), want 2\n%s", n.Cluster, count, v6, rules)
			}
			restore := "iptables-restore"
			if v6 {
				restore = "ip6tables-restore"
			}
			if out, err := runStdin(rules, "ip", "netns", "exec", ns, restore, "--noflush"); err != nil {
				t.Fatalf("%s %s: %v\n%s\n%s", n.Cluster, restore, err, out, rules)
			}
		}
		for _, ip := range svc.Spec.ClusterIPs {
			vip := netip.AddrPortFrom(netip.MustParseAddr(ip), 80)
			seen := map[string]int{}
			tries := 0
			for ; tries < 60 && (seen["b"] == 0 || seen["c"] == 0); tries++ {
				got, err := askVIP(t, w.PodNS(n.Cluster, n.Name), vip)
				if err != nil {
					t.Fatalf("from %s's pod to the VIP %s: %v", n.Cluster, vip, err)
				}
				seen[got]++
			}
			t.Logf("from %s's pod, VIP %s: %d connections, answered by %v", n.Cluster, vip, tries, seen)
			if seen["b"] == 0 || seen["c"] == 0 || len(seen) != 2 {
				t.Errorf("from %s's pod, VIP %s reached %v; want the pods of b and c", n.Cluster, vip, seen)
			}
		}
	}
}

// runStdin runs a command with input on its standard input.
func runStdin(input, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
