package kustomize_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	dnsserver "kosmos.io/kosmos/dnsplugin/server"
	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/internal/testinfra/dnstest"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// clustersetServer builds examples/coredns-clusterset and returns the
// server block it gives the cluster's CoreDNS, after checking that the
// block forwards to the address the kosmos-dns Service is pinned to and
// that the local wiring ConfigMap is not deployed.
func clustersetServer(t *testing.T) string {
	t.Helper()
	var block, clusterIP string
	for _, u := range build(t, filepath.Join("examples", "coredns-clusterset")) {
		switch objKey(u) {
		case "ConfigMap/kube-system/coredns-custom":
			block, _, _ = unstructuredString(u.Object, "data", "clusterset.server")
		case "Service/kosmos-system/kosmos-dns":
			clusterIP, _, _ = unstructuredString(u.Object, "spec", "clusterIP")
		case "ConfigMap/kosmos-system/kosmos-dns-wiring":
			t.Errorf("the local wiring ConfigMap is deployed")
		}
	}
	if clusterIP != "10.96.0.53" || !strings.Contains(block, "\tforward . 10.96.0.53 {\n") || !strings.HasPrefix(block, "clusterset.local:53 {") {
		t.Fatalf("kosmos-dns clusterIP %q, coredns-custom clusterset.server:\n%s\nwant both on 10.96.0.53", clusterIP, block)
	}
	return block
}

func unstructuredString(obj map[string]any, fields ...string) (string, bool, error) {
	var cur any = obj
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[f]
	}
	s, ok := cur.(string)
	return s, ok, nil
}

// startCoreDNS runs a CoreDNS from a Corefile until the test ends.
func startCoreDNS(t *testing.T, corefile string) string {
	t.Helper()
	inst, err := dnsserver.Start(corefile)
	if err != nil {
		t.Fatalf("start CoreDNS:\n%s\n%v", corefile, err)
	}
	t.Cleanup(func() { _ = dnsserver.Stop(inst) })
	udp, _ := dnsserver.Addrs(inst)
	return udp
}

// TestCoreDNSClustersetWiring: the cluster's CoreDNS, a kubeadm-like
// Corefile that imports the component's server block (its forward address
// swapped for where kosmos dns listens here), answers a clusterset name
// with the import's VIP through kosmos dns, which reads a real API server;
// the kosmos check row passes there and fails against a CoreDNS without
// the block.
func TestCoreDNSClustersetWiring(t *testing.T) {
	block := clustersetServer(t)
	env, c := dnstest.Cluster(t, crdDir)
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelTopology: "t"}
	if err := c.Create(ctx, &mcsv1a1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Labels: labels},
		Spec: mcsv1a1.ServiceImportSpec{Type: mcsv1a1.ClusterSetIP, IPs: []string{"10.96.77.7"}, Ports: []mcsv1a1.ServicePort{{Name: "http", Protocol: "TCP", Port: 80}}}}); err != nil {
		t.Fatal(err)
	}
	// kosmos dns, as base/dns runs it (the kosmos plugin for the zone).
	kosmosDNS := startCoreDNS(t, fmt.Sprintf(".:0 {\n bind 127.0.0.1\n kosmos clusterset.local {\n  kubeconfig %s a\n  cluster a\n }\n}\n", env.KubeconfigPath))

	// The cluster's CoreDNS: kubeadm's Corefile plus the import line, the
	// ConfigMap's key as a file in the mounted directory.
	dir := t.TempDir()
	port := dnstest.FreePort(t)
	wired := strings.Replace(block, "10.96.0.53", kosmosDNS, 1)
	wired = strings.Replace(wired, "clusterset.local:53", fmt.Sprintf("clusterset.local:%d", port), 1)
	if err := os.WriteFile(filepath.Join(dir, "clusterset.server"), []byte(wired), 0o600); err != nil {
		t.Fatal(err)
	}
	clusterDNS := startCoreDNS(t, fmt.Sprintf(".:%d {\n    errors\n    cache 30\n    loadbalance\n}\nimport %s/*.server\n", port, dir))

	want := []string{"10.96.77.7"}
	var got []string
	var rcode int
	var err error
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		rcode, got, err = dnstest.Query("udp", clusterDNS, "web.shop.svc.clusterset.local.", dns.TypeA)
		return err == nil && rcode == dns.RcodeSuccess && slices.Equal(got, want), nil
	})
	if err != nil {
		t.Fatalf("the cluster DNS %s answers web.shop.svc.clusterset.local A with %s %v, want %v", clusterDNS, dns.RcodeToString[rcode], got, want)
	}
	imports := []check.ImportReport{{Namespace: "shop", Name: "web", IPs: want}}
	if row := check.DNSCheck(ctx, "a", "", clusterDNS, check.DNSQuery(clusterDNS, 3*time.Second), imports); row.Result != "PASS" {
		t.Errorf("check row through the wired cluster DNS: %+v", row)
	}
	unwired := startCoreDNS(t, ".:0 {\n    bind 127.0.0.1\n    errors\n}\n")
	if row := check.DNSCheck(ctx, "a", "", unwired, check.DNSQuery(unwired, 3*time.Second), imports); row.Result != "FAIL" {
		t.Errorf("check row through a cluster DNS without the block: %+v", row)
	}
}
