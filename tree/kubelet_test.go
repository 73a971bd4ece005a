package tree_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	streaming "k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree"
	"kosmos.io/kosmos/tree/kubelet"
)

// testCA issues client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubelet-client-ca"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert, key, pool}
}

// issue returns a client certificate for user cn in groups org, as PEM.
func (ca *testCA) issue(t *testing.T, cn string, org ...string) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: org},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	must(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// echoRuntime stands for the member's container runtime: a command
// prints what it is and where it runs, then echoes its stdin.
type echoRuntime struct{}

func (echoRuntime) ExecInContainer(_ context.Context, pod, _, container string, cmd []string, in io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan streaming.TerminalSize, _ time.Duration) error {
	fmt.Fprintf(out, "%s in %s/%s: ", strings.Join(cmd, " "), pod, container)
	if in != nil {
		_, err := io.Copy(out, in)
		return err
	}
	return nil
}

// memberKubelet stands for the member node's kubelet: it serves one
// container's log, and exec through the kubelet's own streaming server.
func memberKubelet(t *testing.T) *httptest.Server {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/containerLogs/shop/web-0/web":
			fmt.Fprintf(w, "hello from member-a (tailLines=%s)\n", r.URL.Query().Get("tailLines"))
		case "/exec/shop/web-0/web":
			opts, err := streaming.NewOptions(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			streaming.ServeExec(w, r, echoRuntime{}, "web-0", "", "web", r.URL.Query()["command"], opts, 30*time.Second, 30*time.Second, streaming.SupportedStreamingProtocols)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestLogsAndExecThroughVirtualNode: `kubectl logs` and `kubectl exec` on
// a host pod go host API server → the tree's kubelet endpoint (client certificate, then a
// SubjectAccessReview in the host) → the member's API server → the member
// node's kubelet, and the member's answer comes back.
func TestLogsAndExecThroughVirtualNode(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	crt, key := ca.issue(t, "kube-apiserver-kubelet-client", "kubelet-api")
	must(t, os.WriteFile(filepath.Join(dir, "client.crt"), crt, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "client.key"), key, 0o600))
	w := newWorld(t, map[string]string{
		"kubelet-client-certificate": filepath.Join(dir, "client.crt"), "kubelet-client-key": filepath.Join(dir, "client.key"),
		"kubelet-preferred-address-types": "InternalIP",
	}, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-a"}, Spec: v1alpha1.ClusterObjectSpec{Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}})
	ctx := context.Background()
	h, ma := w.hostCS, w.members["member-a"]

	// The host lets its API server's kubelet client proxy to nodes, as
	// clusters do (system:kubelet-api-admin).
	_, err := h.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "kubelet-api"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/proxy"}, Verbs: []string{"get", "create"}}}}, metav1.CreateOptions{})
	must(t, err)
	_, err = h.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "kubelet-api"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "kubelet-api"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "kube-apiserver-kubelet-client"}}}, metav1.CreateOptions{})
	must(t, err)

	// The member node, with its kubelet's endpoint.
	kl := memberKubelet(t)
	_, portStr, _ := net.SplitHostPort(kl.Listener.Addr().String())
	var klPort int32
	fmt.Sscan(portStr, &klPort)
	memberNodeObj(ctx, t, ma, "a1", "4")
	n, err := ma.CoreV1().Nodes().Get(ctx, "a1", metav1.GetOptions{})
	must(t, err)
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = klPort
	_, err = ma.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
	must(t, err)

	// The tree with its kubelet endpoint.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ctl := w.run(10*time.Second, func(c *tree.Controller) { c.NodeIP, c.KubeletPort = "127.0.0.1", int32(ln.Addr().(*net.TCPAddr).Port) })
	sctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go func() { _ = (&kubelet.Server{Tree: ctl, ClientCA: ca.pool}).Serve(sctx, ln) }()

	step := steps(t)
	step("the virtual node advertises the endpoint; the pod runs", func(t *testing.T) {
		waitFor(t, "the virtual node with its kubelet endpoint", func() error {
			n, err := h.CoreV1().Nodes().Get(ctx, "kosmos-member-a", metav1.GetOptions{})
			if err == nil && n.Status.DaemonEndpoints.KubeletEndpoint.Port == 0 {
				return fmt.Errorf("no kubelet endpoint yet")
			}
			return err
		})
		_, err := h.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{})
		must(t, err)
		_, err = h.CoreV1().ServiceAccounts("shop").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
		must(t, err)
		_, err = h.CoreV1().Pods("shop").Create(ctx, hostPod("shop", "web-0", "kosmos-member-a"), metav1.CreateOptions{})
		must(t, err)
		var mp *corev1.Pod
		waitFor(t, "the pod in member-a", func() error { mp, err = ma.CoreV1().Pods("shop").Get(ctx, "web-0", metav1.GetOptions{}); return err })
		must(t, runPod(ctx, ma, mp, "a1", "10.244.0.9"))
	})

	step("kubectl logs", func(t *testing.T) {
		tail := int64(5)
		var out []byte
		var err error
		waitFor(t, "the log through the virtual node", func() error {
			out, err = h.CoreV1().Pods("shop").GetLogs("web-0", &corev1.PodLogOptions{Container: "web", TailLines: &tail}).DoRaw(ctx)
			return err
		})
		if got, want := string(out), "hello from member-a (tailLines=5)\n"; got != want {
			t.Errorf("logs = %q, want %q", got, want)
		}
	})

	step("kubectl exec", func(t *testing.T) {
		// kubectl exec: WebSocket to the host, SPDY from there on, through the
		// tree to the member's API server and its kubelet.
		req := h.CoreV1().RESTClient().Post().Namespace("shop").Resource("pods").Name("web-0").SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Container: "web", Command: []string{"cat", "-"}, Stdin: true, Stdout: true}, scheme.ParameterCodec)
		exec, err := remotecommand.NewWebSocketExecutor(w.env.Cluster("host").Config, "GET", req.URL().String())
		must(t, err)
		var stdout bytes.Buffer
		must(t, exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("ping"), Stdout: &stdout}))
		if got, want := stdout.String(), "cat - in web-0/web: ping"; got != want {
			t.Errorf("exec printed %q, want %q", got, want)
		}
	})

	step("anyone else is turned away", func(t *testing.T) {
		// Anyone else is turned away: a certificate the CA signed for a user
		// the host does not allow, and no certificate at all.
		icrt, ikey := ca.issue(t, "intruder")
		pair, err := tls.X509KeyPair(icrt, ikey)
		must(t, err)
		url := "https://" + ln.Addr().String() + "/containerLogs/shop/web-0/web"
		intruder := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true}}}
		resp, err := intruder.Get(url)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("an unauthorized user got %s", resp.Status)
		}
		anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		if resp, err := anon.Get(url); err == nil {
			resp.Body.Close()
			t.Errorf("a client without a certificate got %s", resp.Status)
		}
	})
}
