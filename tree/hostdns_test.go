package tree_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dnsserver "kosmos.io/kosmos/dnsplugin/server"
	"kosmos.io/kosmos/internal/testinfra/dnstest"
	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree"
)

// resolve looks name up as a pod's resolver does with cfg (its search
// path and ndots), asking server (where the pod's nameserver stands): a
// name with fewer dots than ndots is tried with each search domain first.
// It returns the addresses and the name that answered.
func resolve(server, name string, cfg *corev1.PodDNSConfig) ([]string, string, error) {
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
	for _, fq := range tries {
		rcode, answers, err := dnstest.Query("udp", server, fq, dns.TypeA)
		if err != nil {
			return nil, "", err
		}
		if rcode == dns.RcodeSuccess && len(answers) > 0 {
			return answers, fq, nil
		}
	}
	return nil, "", fmt.Errorf("%s: no answer for any of %v", name, tries)
}

// TestHostServicesInMembers: a pod run in a member resolves the host's
// Services by the names it would use in the host (backend,
// backend.shop, backend.shop.svc.cluster.local) at the host's cluster DNS
// (found as kube-system/kube-dns), through the search path of its host
// namespace, and gets the host's service variables; a pod annotated
// kosmos.io/member-dns: member keeps the member's DNS. The host's DNS is a
// real CoreDNS (kubernetes plugin) on the host's API server.
func TestHostServicesInMembers(t *testing.T) {
	a := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-a"}, Spec: v1alpha1.ClusterObjectSpec{Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}}
	w := newWorld(t, nil, a)
	ctx := context.Background()
	h, m := w.hostCS, w.members["member-a"]
	memberNodeObj(ctx, t, m, "a1", "4")
	service := func(ns, name string, port int32) *corev1.Service {
		s, err := h.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Name: "p", Port: port, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP}}}},
			metav1.CreateOptions{})
		must(t, err)
		return s
	}
	kubeDNS := service("kube-system", "kube-dns", 53)
	_, err := h.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{})
	must(t, err)
	_, err = h.CoreV1().ServiceAccounts("shop").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	must(t, err)
	backend := service("shop", "backend", 8080)

	// The host's cluster DNS, as kubeadm's CoreDNS answers cluster.local.
	inst, err := dnsserver.Start(fmt.Sprintf(".:0 {\n bind 127.0.0.1\n kubernetes cluster.local {\n  kubeconfig %s host\n }\n}\n", w.env.KubeconfigPath))
	must(t, err)
	t.Cleanup(func() { _ = dnsserver.Stop(inst) })
	hostDNS, _ := dnsserver.Addrs(inst)

	w.run(2 * time.Second)
	waitFor(t, "virtual node Ready", wantReady(ctx, h, "kosmos-member-a", corev1.ConditionTrue))
	pod := func(name string, ann map[string]string) *corev1.Pod {
		no := false
		p, err := h.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Annotations: ann},
			Spec: corev1.PodSpec{NodeName: "kosmos-member-a", AutomountServiceAccountToken: &no,
				Tolerations: []corev1.Toleration{{Key: tree.TaintLeaf, Operator: corev1.TolerationOpExists}},
				Containers:  []corev1.Container{{Name: "web", Image: "shop/web:1"}}}}, metav1.CreateOptions{})
		must(t, err)
		var mp *corev1.Pod
		waitFor(t, name+"'s copy", func() error {
			mp, err = m.CoreV1().Pods("shop").Get(ctx, name, metav1.GetOptions{})
			return err
		})
		_ = p
		return mp
	}

	mp := pod("web-0", nil)
	cfg := mp.Spec.DNSConfig
	if mp.Spec.DNSPolicy != corev1.DNSNone || cfg == nil || !slices.Equal(cfg.Nameservers, []string{kubeDNS.Spec.ClusterIP}) {
		t.Fatalf("copy's DNS: policy %s, config %+v; want None at the host's kube-dns %s", mp.Spec.DNSPolicy, cfg, kubeDNS.Spec.ClusterIP)
	}
	t.Logf("copy's DNS: nameserver %v, search %v (the host's DNS stands at %s in this test)", cfg.Nameservers, cfg.Searches, hostDNS)
	for _, name := range []string{"backend", "backend.shop", "backend.shop.svc.cluster.local"} {
		var got []string
		var by string
		waitFor(t, "resolve "+name, func() error {
			got, by, err = resolve(hostDNS, name, cfg)
			return err
		})
		if !slices.Equal(got, []string{backend.Spec.ClusterIP}) {
			t.Errorf("%s resolved (as %s) to %v, want the host Service's %s", name, by, got, backend.Spec.ClusterIP)
		}
	}
	env := map[string]string{}
	for _, e := range mp.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["BACKEND_SERVICE_HOST"] != backend.Spec.ClusterIP || env["BACKEND_SERVICE_PORT"] != "8080" || mp.Spec.EnableServiceLinks == nil || *mp.Spec.EnableServiceLinks {
		t.Errorf("copy's service variables %v, service links %v", env, mp.Spec.EnableServiceLinks)
	}

	own := pod("web-1", map[string]string{"kosmos.io/member-dns": "member"})
	if own.Spec.DNSPolicy == corev1.DNSNone || own.Spec.DNSConfig != nil {
		t.Errorf("annotated copy's DNS: %s %+v, want the member's", own.Spec.DNSPolicy, own.Spec.DNSConfig)
	}

	// Both clusters state one service range (as kubeadm's defaults do):
	// unmapped, the host's addresses would reach the member's own Services.
	svcRange := netip.PrefixFrom(netip.MustParseAddr(kubeDNS.Spec.ClusterIP), 24).Masked()
	setNetwork := func(global map[string]string) {
		var cl v1alpha1.Cluster
		must(t, w.host.Get(ctx, client.ObjectKey{Name: "member-a"}, &cl))
		cl.Spec.ServiceCIDRs, cl.Spec.HostServiceCIDRs, cl.Spec.HostGlobalCIDRs = []string{svcRange.String()}, []string{svcRange.String()}, global
		must(t, w.host.Update(ctx, &cl))
		w.awaitPasses(t, 2)
	}
	setNetwork(nil)
	clash := pod("web-2", nil)
	if clash.Spec.DNSPolicy == corev1.DNSNone || (clash.Spec.EnableServiceLinks != nil && !*clash.Spec.EnableServiceLinks) {
		t.Errorf("overlapping ranges: copy's DNS %s %+v, service links %v; want the member's", clash.Spec.DNSPolicy, clash.Spec.DNSConfig, clash.Spec.EnableServiceLinks)
	}
	for _, e := range clash.Spec.Containers[0].Env {
		t.Errorf("overlapping ranges: copy has host variable %s=%s", e.Name, e.Value)
	}
	waitFor(t, "the event on web-2", func() error {
		evs, err := h.CoreV1().Events("shop").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web-2"})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason == tree.ReasonHostServicesUnreachable {
				t.Logf("event: %s", e.Message)
				return nil
			}
		}
		return fmt.Errorf("%d events, none %s", len(evs.Items), tree.ReasonHostServicesUnreachable)
	})

	// The host maps its service range: NETMAP at the host's edge would skip
	// an iptables kube-proxy's DNAT and the host's DNS answers real
	// ClusterIPs, so copies keep the member's DNS, with the reason.
	global := netip.PrefixFrom(netip.MustParseAddr("100.80.0.0"), 24)
	setNetwork(map[string]string{svcRange.String(): global.String()})
	mapped := pod("web-3", nil)
	if mapped.Spec.DNSPolicy == corev1.DNSNone || mapped.Spec.DNSConfig != nil {
		t.Errorf("mapped: copy's DNS %s %+v, want the member's", mapped.Spec.DNSPolicy, mapped.Spec.DNSConfig)
	}
	for _, e := range mapped.Spec.Containers[0].Env {
		t.Errorf("mapped: copy has host variable %s=%s", e.Name, e.Value)
	}
	waitFor(t, "the event on web-3", func() error {
		evs, err := h.CoreV1().Events("shop").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web-3"})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason == tree.ReasonHostServicesUnreachable && strings.Contains(e.Message, "globalCIDRs map") {
				return nil
			}
		}
		return fmt.Errorf("%d events, none %s about the mapping", len(evs.Items), tree.ReasonHostServicesUnreachable)
	})
}
