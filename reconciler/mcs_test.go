package reconciler_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/dnsplugin/server"
	"kosmos.io/kosmos/internal/testinfra/dnstest"
	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/reconciler/mcs"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

func ptr[T any](v T) *T { return &v }

// mcsWorld starts clusters a, b and c (Kosmos and MCS CRDs installed) and
// connects to them as testdata/mcs-topology.yaml names them.
func mcsWorld(t *testing.T) (*testenv.Env, *v1alpha1.KosmosTopology, []reconciler.Cluster) {
	t.Helper()
	env := testenv.StartT(t, testenv.Options{Names: []string{"a", "b", "c"}, CRDDirs: []string{filepath.Join("..", "kustomize", "base", "crds")}})
	topo, err := schema.LoadFile(filepath.Join("testdata", "mcs-topology.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	clusters, err := reconciler.ConnectContexts(topo, env.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	return env, topo, clusters
}

// TestMultiClusterServices runs the export → import sync on three real
// control planes and asks a real CoreDNS (the kosmos plugin) in cluster a:
// a ClusterSetIP service exported by a and c (c's addresses global), a
// headless one exported through spec.services from b, a type conflict
// reported on b's export, the endpoints of an unreachable cluster kept and
// then expired, and un-exporting that removes the imports everywhere while
// the users' own ServiceExports are never touched by prune.
func TestMultiClusterServices(t *testing.T) {
	names := []string{"a", "b", "c"}
	env, topo, clusters := mcsWorld(t)
	cl := map[string]client.Client{}
	for _, c := range clusters {
		if c.Err != nil {
			t.Fatal(c.Err)
		}
		cl[c.Name] = c.Client
	}
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ready := discoveryv1.EndpointConditions{Ready: ptr(true)}
	service := func(c, name string, headless bool, port string, number int32, ep discoveryv1.Endpoint) *corev1.Service {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: port, Protocol: corev1.ProtocolTCP, Port: number}}}}
		if headless {
			svc.Spec.ClusterIP = corev1.ClusterIPNone
		}
		must(cl[c].Create(ctx, svc))
		must(cl[c].Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: name + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4, Endpoints: []discoveryv1.Endpoint{ep},
			Ports: []discoveryv1.EndpointPort{{Name: ptr(port), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(number)}},
		}))
		return svc
	}
	export := func(c, name string) {
		must(cl[c].Create(ctx, &mcsv1a1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}}))
	}
	for _, n := range names {
		must(cl[n].Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}))
	}
	webA := service("a", "web", false, "http", 80, discoveryv1.Endpoint{Addresses: []string{"10.244.0.5"}, Conditions: ready})
	webC := service("c", "web", false, "http", 80, discoveryv1.Endpoint{Addresses: []string{"10.244.0.6"}, Conditions: ready})
	service("b", "web", true, "http", 80, discoveryv1.Endpoint{Addresses: []string{"10.245.0.5"}, Conditions: ready})
	service("b", "db", true, "mysql", 3306, discoveryv1.Endpoint{Addresses: []string{"10.245.0.9"}, Hostname: ptr("db-0"), Conditions: ready})
	export("a", "web") // the user's own, also named by spec.services for a
	export("c", "web")
	// b's headless web is exported a second later: the newest, in conflict.
	poll.Until(t, time.Minute, "a second to pass", func() bool { return time.Since(webC.CreationTimestamp.Time) > 1100*time.Millisecond })
	export("b", "web")

	pass := func(opts reconciler.PassOptions) reconciler.Report {
		t.Helper()
		opts.Prune = true
		rep := reconciler.Pass(ctx, topo, clusters, opts)
		return rep
	}
	noErrors := func(rep reconciler.Report) {
		t.Helper()
		if rep.Guard.Tripped {
			t.Fatal(rep.Guard.Message())
		}
		for _, c := range rep.Clusters {
			if c.Err != nil {
				t.Fatalf("cluster %s: %v", c.Name, c.Err)
			}
		}
	}
	rep := pass(reconciler.PassOptions{})
	noErrors(rep)
	// The first pass creates the derived Services (the API server allocates
	// their ClusterIPs); the second writes them into the imports' spec.ips.
	rep = pass(reconciler.PassOptions{})
	noErrors(rep)

	// Imports in every cluster, each with its own derived Service's
	// ClusterIP as the VIP.
	ipA, ipC := webA.Spec.ClusterIP, webC.Spec.ClusterIP
	globalC := global(t, ipC, "100.65.0.0/24")
	vip := map[string]string{}
	for _, n := range names {
		d := derivedService(t, cl[n], "web")
		vip[n] = d.Spec.ClusterIP
		if d.Spec.Selector != nil || vip[n] == "" || vip[n] == ipA || vip[n] == ipC {
			t.Errorf("cluster %s: derived Service %s %+v, want its own ClusterIP and no selector", n, d.Name, d.Spec)
		}
		var si mcsv1a1.ServiceImport
		must(cl[n].Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, &si))
		if si.Spec.Type != mcsv1a1.ClusterSetIP || !slices.Equal(si.Spec.IPs, []string{vip[n]}) || len(si.Status.Clusters) != 2 {
			t.Errorf("cluster %s: ServiceImport web %+v %+v, want ClusterSetIP %s from a and c", n, si.Spec, si.Status, vip[n])
		}
		var db mcsv1a1.ServiceImport
		must(cl[n].Get(ctx, client.ObjectKey{Namespace: "shop", Name: "db"}, &db))
		if db.Spec.Type != mcsv1a1.Headless {
			t.Errorf("cluster %s: ServiceImport db type %s, want Headless", n, db.Spec.Type)
		}
		if err := cl[n].Get(ctx, client.ObjectKey{Namespace: "shop", Name: mcs.DerivedName("db")}, &corev1.Service{}); !apierrors.IsNotFound(err) {
			t.Errorf("cluster %s: headless import db has a derived Service: %v", n, err)
		}
	}
	// kube-proxy's view in b (which exports web headless, in conflict): the
	// derived Service's slices hold a's and c's endpoints, global addresses.
	if got := derivedAddrs(t, cl["b"], "web"); !slices.Equal(got, []string{"100.64.0.6", "100.68.0.5"}) {
		t.Errorf("b: endpoints of the derived Service of web %v, want a's and c's global addresses", got)
	}
	if got := derivedAddrs(t, cl["a"], "web"); !slices.Equal(got, []string{"10.244.0.5", "100.64.0.6"}) {
		t.Errorf("a: endpoints of the derived Service of web %v, want a's own and c's global address", got)
	}
	// spec.services: Kosmos wrote b's ServiceExport db, not a's web (the
	// user's own, left as it is).
	var se mcsv1a1.ServiceExport
	must(cl["b"].Get(ctx, client.ObjectKey{Namespace: "shop", Name: "db"}, &se))
	if se.Labels["app.kubernetes.io/managed-by"] != "kosmos" || se.Labels["kosmos.io/topology"] != "mcs" {
		t.Errorf("b's ServiceExport db labels %v, want the ownership labels", se.Labels)
	}
	must(cl["a"].Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, &se))
	if len(se.Labels) != 0 {
		t.Errorf("the user's ServiceExport web in a got labels %v", se.Labels)
	}
	// Every cluster has the Corefile of kosmos dns, for its own name.
	var cm corev1.ConfigMap
	must(cl["b"].Get(ctx, client.ObjectKey{Namespace: v1alpha1.SystemNamespace, Name: v1alpha1.DNSConfigMap}, &cm))
	if !strings.Contains(cm.Data["Corefile"], "kosmos clusterset.local in-addr.arpa ip6.arpa {\n        cluster b\n") {
		t.Errorf("b's Corefile:\n%s", cm.Data["Corefile"])
	}
	// The conflict, on b's export; a's and c's are clean.
	for n, want := range map[string]string{"b": "TypeConflict", "a": "NoConflicts", "c": "NoConflicts"} {
		must(cl[n].Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, &se))
		c := meta.FindStatusCondition(se.Status.Conditions, string(mcsv1a1.ServiceExportConditionConflict))
		if c == nil || c.Reason != want || (want == "TypeConflict") != (c.Status == metav1.ConditionTrue) {
			t.Errorf("cluster %s: ServiceExport web conditions %+v, want Conflict reason %s", n, se.Status.Conditions, want)
		}
	}
	// A second pass writes nothing.
	rep = pass(reconciler.PassOptions{})
	noErrors(rep)
	for _, c := range rep.Clusters {
		if c.Result.Writes() != 0 || c.StatusWrites != 0 {
			t.Errorf("cluster %s: second pass wrote %v %v %v and %d statuses", c.Name, c.Result.Created, c.Result.Updated, c.Result.Pruned, c.StatusWrites)
		}
	}

	// DNS in cluster a, over UDP and TCP.
	udp, tcp := startDNS(t, env.KubeconfigPath, "a")
	for _, addr := range []struct{ network, addr string }{{"udp", udp}, {"tcp", tcp}} {
		expectDNS(t, addr.network, addr.addr, "web.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeSuccess, vip["a"])
		expectDNS(t, addr.network, addr.addr, "db.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeSuccess, "10.245.0.9")
		expectDNS(t, addr.network, addr.addr, "db-0.b.db.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeSuccess, "10.245.0.9")
		expectDNS(t, addr.network, addr.addr, "_mysql._tcp.db.shop.svc.clusterset.local.", dns.TypeSRV, dns.RcodeSuccess, "3306 db-0.b.db.shop.svc.clusterset.local.")
		expectDNS(t, addr.network, addr.addr, "web.shop.svc.clusterset.local.", dns.TypeAAAA, dns.RcodeSuccess)
		// The VIP's PTR is cluster.local's: the derived Service is real.
		rev, err := dns.ReverseAddr(vip["a"])
		must(err)
		expectDNS(t, addr.network, addr.addr, rev, dns.TypePTR, dns.RcodeSuccess, mcs.DerivedName("web")+".shop.svc.cluster.local.")
	}
	// c's endpoints change: the derived Service's slices follow, the VIP
	// stays.
	var cSlice discoveryv1.EndpointSlice
	must(cl["c"].Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web-x"}, &cSlice))
	cSlice.Endpoints = append(cSlice.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.244.0.7"}, Conditions: ready})
	must(cl["c"].Update(ctx, &cSlice))
	rep = pass(reconciler.PassOptions{})
	noErrors(rep)
	if got := derivedAddrs(t, cl["a"], "web"); !slices.Equal(got, []string{"10.244.0.5", "100.64.0.6", "100.64.0.7"}) {
		t.Errorf("a: endpoints of the derived Service of web after c's change %v", got)
	}
	for _, n := range names {
		if d := derivedService(t, cl[n], "web"); d.Spec.ClusterIP != vip[n] {
			t.Errorf("cluster %s: the VIP moved from %s to %s", n, vip[n], d.Spec.ClusterIP)
		}
	}
	// c's endpoints, translated, in a.
	var eps discoveryv1.EndpointSliceList
	must(cl["a"].List(ctx, &eps, client.InNamespace("shop"), client.MatchingLabels{mcsv1a1.LabelServiceName: "web", mcsv1a1.LabelSourceCluster: "c"}))
	if len(eps.Items) != 1 || eps.Items[0].Endpoints[0].Addresses[0] != "100.64.0.6" || eps.Items[0].Annotations[v1alpha1.AnnotationServiceIPs] != globalC {
		t.Errorf("a's slices of web from c: %+v, want one with 100.64.0.6 and c's service address %s", eps.Items, globalC)
	}

	// c stops answering: its endpoints stay while the expiry has not passed...
	must(env.Cluster("c").Pause())
	resumed := false
	defer func() {
		if !resumed {
			_ = env.Cluster("c").Resume()
		}
	}()
	known := rep.Facts
	rep = pass(reconciler.PassOptions{Known: known, EndpointExpiry: time.Hour, ClusterTimeout: 10 * time.Second})
	if rep.Clusters[2].Err == nil {
		t.Fatal("paused cluster c answered")
	}
	waitDNS(t, "udp", udp, "web.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeSuccess, vip["a"])
	// A reconciler (re)started meanwhile has no facts of c: it keeps what a
	// holds imported from c, as it is.
	restarted := pass(reconciler.PassOptions{EndpointExpiry: time.Hour, ClusterTimeout: 10 * time.Second})
	if restarted.Clusters[0].Err != nil || restarted.Clusters[0].Result.Writes() != 0 {
		t.Errorf("restarted reconciler, cluster a: %v, writes %v %v %v", restarted.Clusters[0].Err,
			restarted.Clusters[0].Result.Created, restarted.Clusters[0].Result.Updated, restarted.Clusters[0].Result.Pruned)
	}
	if restarted.Clusters[1].Err != nil || restarted.Clusters[1].Result.Writes() != 0 {
		t.Errorf("restarted reconciler, cluster b: %v, writes %v %v %v", restarted.Clusters[1].Err,
			restarted.Clusters[1].Result.Created, restarted.Clusters[1].Result.Updated, restarted.Clusters[1].Result.Pruned)
	}
	expectDNS(t, "udp", udp, "web.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeSuccess, vip["a"])
	for _, n := range []string{"a", "b"} {
		var si mcsv1a1.ServiceImport
		must(cl[n].Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, &si))
		if d := derivedService(t, cl[n], "web"); d.Spec.ClusterIP != vip[n] || !slices.Equal(si.Spec.IPs, []string{vip[n]}) {
			t.Errorf("cluster %s after a restart: derived ClusterIP %s, import ips %v; want %s for both", n, d.Spec.ClusterIP, si.Spec.IPs, vip[n])
		}
	}
	// ... and go once it has.
	rep = pass(reconciler.PassOptions{Known: rep.Facts, EndpointExpiry: time.Millisecond, ClusterTimeout: 10 * time.Second})
	if rep.Facts["c"].Services == nil || !rep.Facts["c"].Services.ObservedAt.Equal(known["c"].Services.ObservedAt) {
		t.Errorf("c's facts were not carried with their observation time: %+v", rep.Facts["c"].Services)
	}
	waitDNS(t, "udp", udp, "web.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeSuccess, vip["a"])
	must(cl["a"].List(ctx, &eps, client.InNamespace("shop"), client.MatchingLabels{mcsv1a1.LabelSourceCluster: "c"}))
	if len(eps.Items) != 0 {
		t.Errorf("c's slices in a after expiry: %d", len(eps.Items))
	}
	if got := derivedAddrs(t, cl["a"], "web"); !slices.Equal(got, []string{"10.244.0.5"}) {
		t.Errorf("a: endpoints of the derived Service of web after c expired %v, want a's own", got)
	}
	must(env.Cluster("c").Resume())
	resumed = true

	// Un-export: the users delete their exports, the topology no longer
	// lists any service.
	for _, n := range names {
		must(client.IgnoreNotFound(cl[n].Delete(ctx, &mcsv1a1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}})))
	}
	topo.Spec.Services = nil
	// Every import goes: most of what Kosmos owns in this fleet without
	// nodes. The deletion guard is TestPruneByInventory's subject: off here.
	rep = pass(reconciler.PassOptions{GuardPercent: 100})
	noErrors(rep)
	for _, n := range names {
		for _, svc := range []string{"web", "db"} {
			err := cl[n].Get(ctx, client.ObjectKey{Namespace: "shop", Name: svc}, &mcsv1a1.ServiceImport{})
			if !apierrors.IsNotFound(err) {
				t.Errorf("cluster %s: ServiceImport %s after un-export: %v", n, svc, err)
			}
		}
		must(cl[n].List(ctx, &eps, client.InNamespace("shop"), client.HasLabels{mcsv1a1.LabelServiceName}))
		if len(eps.Items) != 0 {
			t.Errorf("cluster %s: %d imported slices after un-export", n, len(eps.Items))
		}
		if err := cl[n].Get(ctx, client.ObjectKey{Namespace: "shop", Name: mcs.DerivedName("web")}, &corev1.Service{}); !apierrors.IsNotFound(err) {
			t.Errorf("cluster %s: derived Service of web after the last export went: %v", n, err)
		}
	}
	if err := cl["b"].Get(ctx, client.ObjectKey{Namespace: "shop", Name: "db"}, &mcsv1a1.ServiceExport{}); !apierrors.IsNotFound(err) {
		t.Errorf("b's ServiceExport db (written for spec.services) after removal from the topology: %v", err)
	}
	waitDNS(t, "tcp", tcp, "web.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeNameError)
	waitDNS(t, "udp", udp, "db.shop.svc.clusterset.local.", dns.TypeA, dns.RcodeNameError)
}

// TestUserExportNeverPruned: a ServiceExport the user wrote survives passes
// with prune, whatever the topology says.
func TestUserExportNeverPruned(t *testing.T) {
	_, topo, clusters := mcsWorld(t)
	ctx := context.Background()
	c := clusters[0].Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &mcsv1a1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	// spec.services names it, then no longer does.
	for _, services := range [][]v1alpha1.ServiceSpec{{{Namespace: "shop", Name: "web", Clusters: []string{"a"}}}, nil} {
		topo.Spec.Services = services
		rep := reconciler.Pass(ctx, topo, clusters, reconciler.PassOptions{Prune: true})
		for _, cr := range rep.Clusters {
			if cr.Err != nil {
				t.Fatalf("cluster %s: %v", cr.Name, cr.Err)
			}
		}
		var se mcsv1a1.ServiceExport
		if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, &se); err != nil {
			t.Fatalf("the user's ServiceExport after a pass (services %v): %v", services, err)
		}
		// It is reported on: no Service there.
		if v := meta.FindStatusCondition(se.Status.Conditions, "Valid"); v == nil || v.Reason != "NoService" {
			t.Errorf("conditions %+v, want Valid=False NoService", se.Status.Conditions)
		}
	}
}

// global is ip's address in the global CIDR (host bits kept).
func global(t *testing.T, ip, cidr string) string {
	t.Helper()
	p := netip.MustParsePrefix(cidr)
	a := netip.MustParseAddr(ip)
	real := netip.PrefixFrom(a, p.Bits()).Masked()
	return mcs.Translate(a, map[string]string{real.String(): p.String()}).String()
}

func startDNS(t *testing.T, kubeconfig, kctx string) (udp, tcp string) {
	t.Helper()
	// As the shipped Corefile: kosmos for the clusterset zone, kubernetes
	// for cluster.local (the derived Services' names and PTRs).
	inst, err := server.Start(fmt.Sprintf(".:0 {\n bind 127.0.0.1\n kosmos clusterset.local in-addr.arpa {\n  kubeconfig %[1]s %[2]s\n  cluster %[2]s\n }\n"+
		" kubernetes cluster.local in-addr.arpa {\n  kubeconfig %[1]s %[2]s\n  fallthrough in-addr.arpa\n }\n}\n", kubeconfig, kctx))
	if err != nil {
		t.Fatalf("start CoreDNS: %v", err)
	}
	t.Cleanup(func() {
		if err := server.Stop(inst); err != nil {
			t.Errorf("stop CoreDNS: %v", err)
		}
	})
	udp, tcp = server.Addrs(inst)
	waitDNS(t, "udp", udp, "dns-version.clusterset.local.", dns.TypeTXT, dns.RcodeSuccess, "1.0.0")
	return udp, tcp
}

// derivedService returns the Service Kosmos derived from the import of
// shop/<name> in the cluster, failing the test when there is none.
func derivedService(t *testing.T, c client.Client, name string) *corev1.Service {
	t.Helper()
	var svc corev1.Service
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: mcs.DerivedName(name)}, &svc); err != nil {
		t.Fatalf("derived Service of shop/%s: %v", name, err)
	}
	if svc.Labels[mcsv1a1.LabelServiceName] != name || svc.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedBy || svc.Labels[v1alpha1.LabelTopology] == "" {
		t.Errorf("derived Service %s labels %v", svc.Name, svc.Labels)
	}
	return &svc
}

// derivedAddrs are the addresses of the ready endpoints kube-proxy would
// program for the derived Service of shop/<name> (slices labelled with its
// name), sorted.
func derivedAddrs(t *testing.T, c client.Client, name string) []string {
	t.Helper()
	var eps discoveryv1.EndpointSliceList
	if err := c.List(context.Background(), &eps, client.InNamespace("shop"), client.MatchingLabels{discoveryv1.LabelServiceName: mcs.DerivedName(name)}); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range eps.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				out = append(out, e.Addresses...)
			}
		}
	}
	slices.Sort(out)
	return out
}

func expectDNS(t *testing.T, network, addr, name string, qtype uint16, rcode int, want ...string) {
	t.Helper()
	got, ans, err := dnstest.Query(network, addr, name, qtype)
	if err != nil || got != rcode || !slices.Equal(ans, want) {
		t.Errorf("%s %s over %s: %s %v (err %v), want %s %v", name, dns.TypeToString[qtype], network, dns.RcodeToString[got], ans, err, dns.RcodeToString[rcode], want)
	}
}

// waitDNS waits until the answer is as wanted (the plugin follows the API
// server through watches).
func waitDNS(t *testing.T, network, addr, name string, qtype uint16, rcode int, want ...string) {
	t.Helper()
	var got int
	var ans []string
	var qerr error
	err := wait.PollUntilContextTimeout(context.Background(), 25*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		got, ans, qerr = dnstest.Query(network, addr, name, qtype)
		return qerr == nil && got == rcode && slices.Equal(ans, want), nil
	})
	if err != nil {
		t.Fatalf("%s %s over %s: last %s %v (err %v), want %s %v", name, dns.TypeToString[qtype], network, dns.RcodeToString[got], ans, qerr, dns.RcodeToString[rcode], want)
	}
}

// TestControllerFollowsExports: the controller imports a service as soon as
// it is exported and its endpoints change, writes the derived Service's
// ClusterIP into the import once allocated, and re-creates a derived
// Service someone deleted, through its watches (the resync is an hour
// away).
func TestControllerFollowsExports(t *testing.T) {
	env, _, clusters := mcsWorld(t)
	a, c := clusters[0].Client, clusters[2].Client
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, cl := range clusters {
		if err := cl.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
			t.Fatal(err)
		}
	}
	ctl := &reconciler.Controller{
		TopologyPath: filepath.Join("testdata", "mcs-topology.yaml"),
		Connect: func(tp *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
			return reconciler.ConnectContexts(tp, env.KubeconfigPath)
		},
		Resync: time.Hour,
		Prune:  true,
		// Un-exporting the one service deletes most of what Kosmos owns in
		// this fleet without nodes (the import, its slices and derived
		// Service in every cluster): the deletion guard, TestPruneByInventory's
		// subject, is off here.
		GuardPercent: 100,
		Log:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = ctl.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// c exports web (a ClusterIP service with one endpoint).
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}}}
	slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-x", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.6"}}}}
	for _, o := range []client.Object{svc, slice, &mcsv1a1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	addrsInA := func() []string {
		var eps discoveryv1.EndpointSliceList
		if err := a.List(ctx, &eps, client.InNamespace("shop"), client.MatchingLabels{mcsv1a1.LabelServiceName: "web", mcsv1a1.LabelSourceCluster: "c"}); err != nil {
			return nil
		}
		var out []string
		for _, s := range eps.Items {
			for _, e := range s.Endpoints {
				out = append(out, e.Addresses...)
			}
		}
		slices.Sort(out)
		return out
	}
	poll.Until(t, time.Minute, "web's endpoint from c imported into a, translated", func() bool { return slices.Equal(addrsInA(), []string{"100.64.0.6"}) })
	// The derived Service's creation wakes the controller: the import gets
	// its ClusterIP as the VIP without waiting for the resync.
	var derived corev1.Service
	vipInA := func() bool {
		var si mcsv1a1.ServiceImport
		return a.Get(ctx, client.ObjectKey{Namespace: "shop", Name: mcs.DerivedName("web")}, &derived) == nil &&
			a.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, &si) == nil &&
			derived.Spec.ClusterIP != "" && slices.Equal(si.Spec.IPs, []string{derived.Spec.ClusterIP})
	}
	poll.Until(t, time.Minute, "a's ServiceImport web to carry its derived Service's ClusterIP", vipInA)
	// Someone deletes the derived Service: its deletion wakes the
	// controller, which re-creates it, and the import follows the new one.
	old := derived.UID
	if err := a.Delete(ctx, &derived); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, "a's derived Service of web re-created, its ClusterIP in the import", func() bool {
		return vipInA() && derived.UID != old
	})
	// A second endpoint in c.
	slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.244.0.7"}})
	if err := c.Update(ctx, slice); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, "c's new endpoint imported into a", func() bool { return slices.Equal(addrsInA(), []string{"100.64.0.6", "100.64.0.7"}) })
	// Un-export.
	if err := c.Delete(ctx, &mcsv1a1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, "the import gone from a", func() bool {
		return apierrors.IsNotFound(a.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, &mcsv1a1.ServiceImport{}))
	})
}
