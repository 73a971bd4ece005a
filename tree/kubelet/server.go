package kubelet

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
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
)

// Tree is what the endpoint needs of the tree controller, which
// implements it (*tree.Controller).
//
// Methods are called concurrently from request goroutines and must be
// safe for that; they read caches and return at once. Nothing they return
// is modified by the endpoint; an Upstream's Transport is shared between
// requests.
type Tree interface {
	// Synced tells whether the host's caches are filled; until then every
	// request is answered 503.
	Synced() bool
	// VirtualNode is the virtual node the host's pod namespace/name is
	// bound to: "" when there is no such pod or its node is not a virtual
	// node.
	VirtualNode(namespace, name string) string
	// Upstream is the member API server that serves the copy of host pod
	// namespace/name: a *NotConnectedError when the member behind its node
	// is not connected, a *NoCopyError when the member has no copy of this
	// pod (not yet, or one the tree did not make).
	Upstream(namespace, name string) (Upstream, error)
	// SubjectAccessReviews reaches the host's authorizer; called only
	// once Synced.
	SubjectAccessReviews() authorizationv1client.SubjectAccessReviewInterface
}

// Upstream is where a request for one pod goes.
type Upstream struct {
	// Cluster names the member cluster, for error messages.
	Cluster string
	// Host is the member API server's URL (a rest.Config's Host).
	Host string
	// Transport reaches it over HTTP/1.1 (streams are upgraded end to end)
	// with the tree's credentials for that member.
	Transport http.RoundTripper
}

// NotConnectedError: the member cluster behind a virtual node has no sync
// (answered 503).
type NotConnectedError struct{ Node string }

func (e *NotConnectedError) Error() string {
	return fmt.Sprintf("the member cluster of node %s is not connected", e.Node)
}

// NoCopyError: the member holds no copy of the host pod (answered 404).
type NoCopyError struct{ Namespace, Pod, Cluster string }

func (e *NoCopyError) Error() string {
	return fmt.Sprintf("pod %s/%s has not reached member cluster %s", e.Namespace, e.Pod, e.Cluster)
}

// Server serves, for the pods of virtual nodes, the kubelet endpoints the
// host's API server calls for `kubectl logs`, `exec`, `attach` and
// `port-forward`, and relays each to the member's API server as the same
// operation on the member pod.
//
// The host's API server is authenticated by its kubelet client
// certificate (verified against ClientCA) and authorized, as a kubelet
// does, by a SubjectAccessReview in the host: verb get (GET) or create
// (exec, attach, port-forward) on nodes/proxy of the pod's virtual node.
// Only query parameters the operation knows are passed on, and no
// impersonation header.
type Server struct {
	// Tree resolves pods to members; required.
	Tree Tree
	// ClientCA verifies client certificates; required.
	ClientCA *x509.CertPool
	// Certificate serves TLS; a self-signed one when empty (the host's API
	// server verifies kubelets only when --kubelet-certificate-authority
	// is set).
	Certificate *tls.Certificate
	// Log receives refusals (default slog.Default()).
	Log *slog.Logger

	mu    sync.Mutex
	authz map[string]decision // by user, groups, verb and node
}

// Serve answers on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
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

// errNoAccess answers both a missing pod and a refused caller, so that a
// certificate holder learns nothing about pods it may not reach.
const errNoAccess = "forbidden, or no such pod on a virtual node"

// refusal is a request the endpoint answers itself, with code and msg.
type refusal struct {
	code int
	msg  string
}

// ServeHTTP resolves the request to a member pod (resolve), then relays
// it there (relay).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		_, _ = io.WriteString(w, "ok")
		return
	}
	target, up, ref := s.resolve(r)
	if ref != nil {
		http.Error(w, ref.msg, ref.code)
		return
	}
	s.relay(w, r, target, up)
}

// resolve checks r and finds where it goes: the request (path, method),
// the host pod on a virtual node, the caller's right to it (authorize),
// the member and its copy of the pod. It returns the member URL to call
// and the upstream, or why not.
func (s *Server) resolve(r *http.Request) (*url.URL, Upstream, *refusal) {
	if !s.Tree.Synced() {
		return nil, Upstream{}, &refusal{http.StatusServiceUnavailable, "starting: the host's caches are not filled yet"}
	}
	kp, ok := parsePath(r.URL.Path)
	if !ok {
		return nil, Upstream{}, &refusal{http.StatusNotFound, "404 page not found"}
	}
	if !kp.allows(r.Method) {
		return nil, Upstream{}, &refusal{http.StatusMethodNotAllowed, "method not allowed"}
	}
	node := s.Tree.VirtualNode(kp.ns, kp.pod)
	if node == "" {
		return nil, Upstream{}, &refusal{http.StatusForbidden, errNoAccess}
	}
	if err := s.authorize(r, kp.verb(), node); err != nil {
		s.log().Info("kubelet endpoint refused a request", "path", r.URL.Path, "reason", err.Error())
		return nil, Upstream{}, &refusal{http.StatusForbidden, errNoAccess}
	}
	up, err := s.Tree.Upstream(kp.ns, kp.pod)
	var notConnected *NotConnectedError
	var noCopy *NoCopyError
	switch {
	case errors.As(err, &notConnected):
		return nil, up, &refusal{http.StatusServiceUnavailable, err.Error()}
	case errors.As(err, &noCopy):
		return nil, up, &refusal{http.StatusNotFound, err.Error()}
	case err != nil:
		s.log().Warn("kubelet endpoint", "path", r.URL.Path, "err", err)
		return nil, up, &refusal{http.StatusInternalServerError, "member transport"}
	}
	target, err := url.Parse(up.Host)
	if err != nil {
		return nil, up, &refusal{http.StatusInternalServerError, "member endpoint"}
	}
	target.Path = strings.TrimSuffix(target.Path, "/") + fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/%s", kp.ns, kp.pod, memberOps[kp.op])
	target.RawQuery = memberQuery(kp, r.URL.Query()).Encode()
	return target, up, nil
}

// relay proxies r to target on the member's API server, without the
// caller's credentials or impersonation headers; streams stay open end to
// end.
func (s *Server) relay(w http.ResponseWriter, r *http.Request, target *url.URL, up Upstream) {
	proxy := &httputil.ReverseProxy{
		Transport:     up.Transport,
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
			http.Error(w, fmt.Sprintf("member cluster %s: %v", up.Cluster, err), http.StatusBadGateway)
		},
	}
	proxy.ServeHTTP(w, r)
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

// authorize asks the host whether the client may verb nodes/proxy on
// node, as the kubelet's webhook authorizer does. Answers are cached: an
// allow for a minute, a denial for ten seconds.
func (s *Server) authorize(r *http.Request, verb, node string) error {
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
	res, err := s.Tree.SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
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
