package tree

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"kosmos.io/kosmos/tree/translate"
)

// KubeletServer serves, for the pods of virtual nodes, the kubelet
// endpoints the host's API server calls for `kubectl logs`, `exec`,
// `attach` and `port-forward`, and relays each to the member's API server
// as the same operation on the member pod.
//
// The host's API server is authenticated by its kubelet client
// certificate (verified against ClientCA) and authorized, as a kubelet
// does, by a SubjectAccessReview in the host: verb get (GET) or create
// (exec, attach, port-forward) on nodes/proxy of the pod's virtual node.
// Only query parameters the operation knows are passed on, and no
// impersonation header.
type KubeletServer struct {
	// Controller finds the pod's member.
	Controller *Controller
	// ClientCA verifies client certificates; required.
	ClientCA *x509.CertPool
	// Certificate serves TLS; a self-signed one when empty (the host's API
	// server verifies kubelets only when --kubelet-certificate-authority
	// is set).
	Certificate *tls.Certificate

	mu    sync.Mutex
	authz map[string]decision // by user, groups, verb and node
}

// Serve answers on ln until ctx ends.
func (s *KubeletServer) Serve(ctx context.Context, ln net.Listener) error {
	if s.ClientCA == nil {
		return errors.New("kubelet endpoint: no client CA: the host API server could not be told from anyone else")
	}
	cert := s.Certificate
	if cert == nil {
		c, err := selfSigned()
		if err != nil {
			return err
		}
		cert = c
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{*cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: s.ClientCA,
			MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("kubelet endpoint: %w", err)
	}
	return nil
}

func selfSigned() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "kosmos-tree"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// kubeletPath is a parsed kubelet request path.
type kubeletPath struct {
	op, ns, pod, container string
}

// parseKubeletPath reads /containerLogs|exec|attach/NS/POD/CONTAINER and
// /portForward/NS/POD.
func parseKubeletPath(p string) (kubeletPath, bool) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case len(parts) == 4 && (parts[0] == "containerLogs" || parts[0] == "exec" || parts[0] == "attach"):
		return kubeletPath{parts[0], parts[1], parts[2], parts[3]}, true
	case len(parts) == 3 && parts[0] == "portForward":
		return kubeletPath{op: parts[0], ns: parts[1], pod: parts[2]}, true
	}
	return kubeletPath{}, false
}

// allowedQuery lists, per operation, the kubelet query parameters that
// are passed on (renamed where the member API calls them otherwise);
// anything else is dropped.
var allowedQuery = map[string]map[string]string{
	"containerLogs": {"follow": "follow", "previous": "previous", "sinceSeconds": "sinceSeconds", "sinceTime": "sinceTime",
		"timestamps": "timestamps", "tailLines": "tailLines", "limitBytes": "limitBytes"},
	"exec": {corev1.ExecCommandParam: "command", corev1.ExecStdinParam: "stdin", corev1.ExecStdoutParam: "stdout",
		corev1.ExecStderrParam: "stderr", corev1.ExecTTYParam: "tty"},
	"attach": {corev1.ExecStdinParam: "stdin", corev1.ExecStdoutParam: "stdout", corev1.ExecStderrParam: "stderr",
		corev1.ExecTTYParam: "tty"},
	"portForward": {"port": "ports"},
}

// memberQuery turns kubelet query parameters into the member API's: only
// the allowed ones, renamed; the container joins.
func memberQuery(kp kubeletPath, in url.Values) url.Values {
	out := url.Values{}
	for k, vs := range in {
		if to, ok := allowedQuery[kp.op][k]; ok {
			out[to] = vs
		}
	}
	if kp.container != "" {
		out.Set("container", kp.container)
	}
	return out
}

var memberOps = map[string]string{"containerLogs": "log", "exec": "exec", "attach": "attach", "portForward": "portforward"}

// errNoAccess answers both a missing pod and a refused caller, so that a
// certificate holder learns nothing about pods it may not reach.
const errNoAccess = "forbidden, or no such pod on a virtual node"

func (s *KubeletServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		_, _ = io.WriteString(w, "ok")
		return
	}
	if !s.Controller.hostReady.Load() {
		http.Error(w, "starting: the host's caches are not filled yet", http.StatusServiceUnavailable)
		return
	}
	kp, ok := parseKubeletPath(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	// Logs are read; streams (exec, attach, port-forward) act.
	verb := "create"
	if kp.op == "containerLogs" {
		verb = "get"
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
	} else if r.Method != http.MethodPost && r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	c := s.Controller
	hp := c.hostPod(kp.ns, kp.pod)
	if hp == nil || c.clusterOfNode(hp.Spec.NodeName) == "" {
		http.Error(w, errNoAccess, http.StatusForbidden)
		return
	}
	if err := s.authorize(r, verb, hp.Spec.NodeName); err != nil {
		c.Log.Info("kubelet endpoint refused a request", "path", r.URL.Path, "reason", err.Error())
		http.Error(w, errNoAccess, http.StatusForbidden)
		return
	}
	m := c.member(c.clusterOfNode(hp.Spec.NodeName))
	if m == nil {
		http.Error(w, fmt.Sprintf("the member cluster of node %s is not connected", hp.Spec.NodeName), http.StatusServiceUnavailable)
		return
	}
	mp := m.pods.Pod(kp.ns, kp.pod)
	if mp == nil || !m.isOwn(mp.Labels) || mp.Annotations[translate.AnnotationHostPodUID] != string(hp.UID) {
		http.Error(w, fmt.Sprintf("pod %s/%s has not reached member cluster %s", kp.ns, kp.pod, m.name), http.StatusNotFound)
		return
	}
	target, err := url.Parse(m.config.Host)
	if err != nil {
		http.Error(w, "member endpoint", http.StatusInternalServerError)
		return
	}
	target.Path = strings.TrimSuffix(target.Path, "/") + fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/%s", kp.ns, kp.pod, memberOps[kp.op])
	target.RawQuery = memberQuery(kp, r.URL.Query()).Encode()
	rt, err := m.upgradeTransport()
	if err != nil {
		http.Error(w, "member transport", http.StatusInternalServerError)
		return
	}
	proxy := &httputil.ReverseProxy{
		Transport:     rt,
		FlushInterval: -1, // logs with follow stream as they come
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL, pr.Out.Host = target, target.Host
			for k := range pr.Out.Header {
				if k == "Authorization" || strings.HasPrefix(k, "Impersonate-") {
					pr.Out.Header.Del(k)
				}
			}
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, fmt.Sprintf("member cluster %s: %v", m.name, err), http.StatusBadGateway)
		},
	}
	proxy.ServeHTTP(w, r)
}

// authorize asks the host whether the client may verb nodes/proxy on
// node, as the kubelet's webhook authorizer does. Answers are cached: an
// allow for a minute, a denial for ten seconds.
func (s *KubeletServer) authorize(r *http.Request, verb, node string) error {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return errors.New("no verified client certificate")
	}
	subj := r.TLS.VerifiedChains[0][0].Subject
	key := strings.Join([]string{subj.CommonName, strings.Join(subj.Organization, "\x00"), verb, node}, "\x00\x00")
	s.mu.Lock()
	d, ok := s.authz[key]
	s.mu.Unlock()
	if ok && time.Now().Before(d.until) {
		return d.err
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: subj.CommonName, Groups: subj.Organization,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Resource: "nodes", Subresource: "proxy", Name: node},
	}}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	res, err := s.Controller.hostCS.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("authorization check failed: %w", err)
	}
	d = decision{until: time.Now().Add(time.Minute)}
	if !res.Status.Allowed {
		d = decision{until: time.Now().Add(10 * time.Second), err: fmt.Errorf("user %q may not %s nodes/proxy on %s", subj.CommonName, verb, node)}
	}
	s.mu.Lock()
	if s.authz == nil || len(s.authz) > 10000 {
		s.authz = map[string]decision{} // bounded: start over rather than grow
	}
	s.authz[key] = d
	s.mu.Unlock()
	return d.err
}

// decision is a cached authorization answer.
type decision struct {
	until time.Time
	err   error
}
