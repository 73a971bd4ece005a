package networld

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dnsserver "kosmos.io/kosmos/dnsplugin/server"
	"kosmos.io/kosmos/internal/testinfra/dnstest"
	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree"
)

// hostServiceTopology: a host and a member whose service ranges differ
// (so a copy reaches the host's ClusterIPs as they are, see
// tree/translate/hostreach.go), joined P2P.
const hostServiceTopology = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: hostsvc}
spec:
  clusters:
    - name: h
      role: host
      kubeconfig: {context: h}
      network: {podCIDRs: [10.10.0.0/16], serviceCIDRs: [10.0.1.0/24]}
    - name: m
      role: member
      kubeconfig: {context: m}
      network: {podCIDRs: [10.20.0.0/16], serviceCIDRs: [10.0.2.0/24]}
`

// mergeProxyRules joins kubeProxyRules' output for several Services into
// one iptables-restore input: each Service's chains get its own tag, the
// shared chains and jumps appear once.
func mergeProxyRules(tags, rendered []string) string {
	var decls, rules []string
	seen := map[string]bool{}
	for i, r := range rendered {
		r = strings.NewReplacer("KUBE-SVC-", "KUBE-SVC-"+tags[i]+"-", "KUBE-SEP-", "KUBE-SEP-"+tags[i]+"-").Replace(r)
		for _, l := range strings.Split(r, "\n") {
			if l == "" || l == "*nat" || l == "COMMIT" || seen[l] {
				continue
			}
			seen[l] = true
			if strings.HasPrefix(l, ":") {
				decls = append(decls, l)
			} else {
				rules = append(rules, l)
			}
		}
	}
	return "*nat\n" + strings.Join(append(decls, rules...), "\n") + "\nCOMMIT\n"
}

// resolveInNS looks name up from inside network namespace ns as a pod's
// resolver does with cfg: at its first nameserver (port 53, UDP), a name
// with fewer dots than ndots tried with each search domain first. It
// returns the first address and the name that answered.
func resolveInNS(t *testing.T, ns, name string, cfg *corev1.PodDNSConfig) (netip.Addr, string, error) {
	t.Helper()
	if cfg == nil || len(cfg.Nameservers) == 0 {
		return netip.Addr{}, "", fmt.Errorf("no nameserver in the pod's DNS config %+v", cfg)
	}
	ndots := 1
	for _, o := range cfg.Options {
		if o.Name == "ndots" && o.Value != nil {
			_, _ = fmt.Sscan(*o.Value, &ndots)
		}
	}
	var tries []string
	if strings.Count(name, ".") < ndots {
		for _, s := range cfg.Searches {
			tries = append(tries, name+"."+s+".")
		}
	}
	tries = append(tries, name+".")
	server := netip.AddrPortFrom(netip.MustParseAddr(cfg.Nameservers[0]), 53).String()
	for _, fq := range tries {
		var rcode int
		var answers []string
		var err error
		inNS(t, ns, func() { rcode, answers, err = dnstest.Query("udp", server, fq, dns.TypeA) })
		if err != nil {
			return netip.Addr{}, "", err
		}
		if rcode == dns.RcodeSuccess && len(answers) > 0 {
			a, err := netip.ParseAddr(answers[0])
			return a, fq, err
		}
	}
	return netip.Addr{}, "", fmt.Errorf("%s: no answer at %s for any of %v", name, server, tries)
}

// TestHostServiceFromMemberPod is the data-plane proof of host services in
// members (issue 18, item 1). Real parts: two API servers (host h, member
// m, with different service ranges), the tree controller making the copy
// of a host pod bound to m's virtual node, a CoreDNS (kubernetes plugin,
// reading h's API server) serving in the pod namespace of h's node, the
// real agent's ClusterLink between the node namespaces, and on h's node
// the nat rules kube-proxy would write for kube-system/kube-dns and
// shop/backend (whose only endpoint is the pod of h's node, serving TCP
// 8080). From the pod namespace of m's node, with the DNS configuration
// the tree gave the copy (nameserver, search path, ndots), "backend"
// resolves at the host's kube-dns ClusterIP to backend's ClusterIP, and a
// TCP connection to it reaches the host pod.
//
// Stand-ins: the EndpointSlices are written by the test (no endpoint
// controller runs), the kube-proxy rules are rendered by kubeProxyRules
// from the Services and slices; the member pod's namespace is the one pod
// namespace of node m1 (the copy itself runs nowhere: no kubelet).
//
// Not covered: a host service range that overlaps the member's and is
// reached through the host's GlobalCIDRs. Tried with this test's parts,
// it does not work: the query to kube-dns's global address is translated
// by the agent's NETMAP in nat PREROUTING, which ends the nat table for
// the connection, so kube-proxy's DNAT to the endpoint never applies (and
// the host's DNS would answer real ClusterIPs, which in the member are the
// member's own range).
func TestHostServiceFromMemberPod(t *testing.T) {
	requireRoot(t)
	env := testenv.StartT(t, testenv.Options{Names: []string{"h", "m"}, CRDDirs: []string{filepath.Join("..", "..", "..", "kustomize", "base", "crds")},
		ClusterArgs: map[string]map[string]string{"h": {"service-cluster-ip-range": "10.0.1.0/24"}, "m": {"service-cluster-ip-range": "10.0.2.0/24"}}})
	clients := env.ClientsT(t)
	hc, mc := clients["h"], clients["m"]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	nodes := []NodeSpec{node("h", "h1", "192.168.0.11/24", "10.10.1.0/24"), node("m", "m1", "192.168.0.21/24", "10.20.1.0/24")}
	w, err := Build("khs-", nodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Destroy)
	_, p := plan(t, hostServiceTopology, nodes)
	applyPlan(t, w, p)
	hostPodNS, memberPodNS := w.PodNS("h", "h1"), w.PodNS("m", "m1")
	hostPodIP := PodIP(nodes[0].PodCIDRs[0])

	// The host: kube-dns and shop/backend, each with the pod of h1 as its
	// one endpoint.
	for _, ns := range []string{"shop", "kosmos-system"} {
		must(t, hc.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	must(t, hc.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "default"}}))
	service := func(ns, name string, ports ...corev1.ServicePort) (*corev1.Service, []discoveryv1.EndpointSlice) {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Ports: ports}}
		must(t, hc.Create(ctx, svc))
		sl := discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{hostPodIP.String()}}}}
		for _, sp := range ports {
			name, port, proto := sp.Name, sp.TargetPort.IntVal, sp.Protocol
			sl.Ports = append(sl.Ports, discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &proto})
		}
		must(t, hc.Create(ctx, &sl))
		return svc, []discoveryv1.EndpointSlice{sl}
	}
	kubeDNS, dnsSlices := service("kube-system", "kube-dns",
		corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(53)},
		corev1.ServicePort{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(53)})
	backend, backendSlices := service("shop", "backend", corev1.ServicePort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 8080, TargetPort: intstr.FromInt32(8080)})
	dnsRules, _ := kubeProxyRules(kubeDNS, dnsSlices, false)
	backendRules, _ := kubeProxyRules(backend, backendSlices, false)
	rules := mergeProxyRules([]string{"DNS", "BACKEND"}, []string{dnsRules, backendRules})
	if out, err := runStdin(rules, "ip", "netns", "exec", w.NodeNS("h", "h1"), "iptables-restore", "--noflush"); err != nil {
		t.Fatalf("h1 iptables-restore: %v\n%s\n%s", err, out, rules)
	}
	serveName(t, hostPodNS, "host pod behind shop/backend")

	// The host's cluster DNS in the host pod's namespace: the listeners
	// are opened there; the kubernetes plugin reaches h's API server
	// from the test's own namespace (its goroutines run on other threads).
	inNS(t, hostPodNS, func() {
		inst, err := dnsserver.Start(fmt.Sprintf(".:53 {\n kubernetes cluster.local {\n  kubeconfig %s h\n }\n}\n", env.KubeconfigPath))
		if err != nil {
			t.Fatalf("CoreDNS in %s: %v", hostPodNS, err)
		}
		t.Cleanup(func() { _ = dnsserver.Stop(inst) })
	})

	// The member and the tree.
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "m1"}}
	must(t, mc.Create(ctx, n))
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")}
	n.Status = corev1.NodeStatus{Allocatable: res, Capacity: res, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}
	must(t, mc.Status().Update(ctx, n))
	kc, err := env.KubeconfigFor("m")
	must(t, err)
	must(t, hc.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kosmos-system", Name: "kubeconfig-m"}, Data: map[string][]byte{"kubeconfig": kc}}))
	must(t, hc.Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "m"}, Spec: v1alpha1.ClusterObjectSpec{
		Kubeconfig: v1alpha1.SecretKeyRef{Name: "kubeconfig-m", Namespace: "kosmos-system"}, Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate},
		ServiceCIDRs: []string{"10.0.2.0/24"}, HostServiceCIDRs: []string{"10.0.1.0/24"}}}))
	s, err := reconciler.Scheme()
	must(t, err)
	treeClient, err := client.New(env.Cluster("h").Config, client.Options{Scheme: s})
	must(t, err)
	ctl := &tree.Controller{Host: treeClient, Config: env.Cluster("h").Config, Namespace: "kosmos-system", Interval: 200 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	tctx, tcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = ctl.Run(tctx) }()
	t.Cleanup(func() { tcancel(); <-done })

	// The pod is bound once its node is there, as a scheduler binds it.
	poll.NoError(t, time.Minute, "virtual node kosmos-m Ready", func() error {
		var vn corev1.Node
		if err := hc.Get(ctx, client.ObjectKey{Name: "kosmos-m"}, &vn); err != nil {
			return err
		}
		for _, c := range vn.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("conditions %v", vn.Status.Conditions)
	})
	no := false
	must(t, hc.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-0"},
		Spec: corev1.PodSpec{NodeName: "kosmos-m", AutomountServiceAccountToken: &no,
			Tolerations: []corev1.Toleration{{Key: tree.TaintLeaf, Operator: corev1.TolerationOpExists}},
			Containers:  []corev1.Container{{Name: "web", Image: "shop/web:1"}}}}))
	var cp corev1.Pod
	poll.NoError(t, time.Minute, "the copy of shop/web-0 in m", func() error {
		err := mc.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web-0"}, &cp)
		if err != nil {
			var evs corev1.EventList
			_ = hc.List(ctx, &evs, client.InNamespace("shop"))
			for _, e := range evs.Items {
				err = fmt.Errorf("%w; event %s: %s", err, e.Reason, e.Message)
			}
		}
		return err
	})
	t.Logf("copy's DNS: policy %s, %+v (host kube-dns %s, backend %s)", cp.Spec.DNSPolicy, cp.Spec.DNSConfig, kubeDNS.Spec.ClusterIP, backend.Spec.ClusterIP)

	start := time.Now()
	var addr netip.Addr
	var by string
	t.Cleanup(func() {
		if t.Failed() { // where the packets went
			nat, _ := InNS(w.NodeNS("h", "h1"), "iptables-save", "-c", "-t", "nat")
			routes, _ := Run("ip", "-n", w.NodeNS("m", "m1"), "route")
			t.Logf("h1's nat table:\n%s\nm1's routes:\n%s", nat, routes)
		}
	})
	poll.NoError(t, time.Minute, "backend resolved from m1's pod through the copy's DNS configuration", func() error {
		addr, by, err = resolveInNS(t, memberPodNS, "backend", cp.Spec.DNSConfig)
		return err
	})
	t.Logf("from %s: backend resolved as %s to %s in %s", memberPodNS, by, addr, time.Since(start).Round(time.Millisecond))
	if addr.String() != backend.Spec.ClusterIP {
		t.Fatalf("backend resolved to %s, want the host Service's ClusterIP %s", addr, backend.Spec.ClusterIP)
	}
	var got string
	poll.NoError(t, 30*time.Second, "TCP from m1's pod to backend's ClusterIP", func() error {
		got, err = askVIP(t, memberPodNS, netip.AddrPortFrom(addr, 8080))
		return err
	})
	if got != "host pod behind shop/backend" {
		t.Errorf("TCP to %s:8080 from %s answered %q, want the host pod", addr, memberPodNS, got)
	}
	t.Logf("TCP %s → %s:8080 answered %q", memberPodNS, addr, got)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
