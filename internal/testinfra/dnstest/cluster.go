package dnstest

import (
	"fmt"
	"net"
	"testing"

	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/internal/testinfra/testenv"
)

// Cluster starts one real API server, named "a", with the CRDs of crdDir
// (the caller's path to kustomize/base/crds), and returns a client that
// knows the core and the Multi-Cluster Services types: what a DNS test
// writes its Services, ServiceImports and EndpointSlices with.
func Cluster(t *testing.T, crdDir string) (*testenv.Env, client.Client) {
	t.Helper()
	env := testenv.StartT(t, testenv.Options{Names: []string{"a"}, CRDDirs: []string{crdDir}})
	s := scheme.Scheme
	if err := mcsv1a1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Cluster("a").Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return env, c
}

// FreePort finds a loopback port free for both TCP and UDP (a DNS
// server's), as far as one can tell.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free loopback port for TCP and UDP")
	return 0
}
