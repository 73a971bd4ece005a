package kubelet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
)

// fakeTree knows one host pod, shop/web-0 on kosmos-a, and answers for
// its member as told.
type fakeTree struct {
	synced   bool
	upstream error
	allow    map[string]bool // user → allowed
	reviews  int
}

func (f *fakeTree) Synced() bool { return f.synced }

func (f *fakeTree) VirtualNode(ns, name string) string {
	if ns == "shop" && name == "web-0" {
		return "kosmos-a"
	}
	return ""
}

func (f *fakeTree) Upstream(ns, name string) (Upstream, error) {
	return Upstream{Cluster: "a", Host: "https://member-a:6443/prefix/", Transport: http.DefaultTransport}, f.upstream
}

func (f *fakeTree) SubjectAccessReviews() authorizationv1client.SubjectAccessReviewInterface {
	return fakeReviews{f}
}

type fakeReviews struct{ f *fakeTree }

func (r fakeReviews) Create(_ context.Context, sar *authorizationv1.SubjectAccessReview, _ metav1.CreateOptions) (*authorizationv1.SubjectAccessReview, error) {
	r.f.reviews++
	a := sar.Spec.ResourceAttributes
	out := sar.DeepCopy()
	out.Status.Allowed = r.f.allow[sar.Spec.User] && a.Resource == "nodes" && a.Subresource == "proxy" && a.Name == "kosmos-a"
	return out, nil
}

func request(method, target, user string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if user != "" {
		r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{Subject: pkix.Name{CommonName: user}}}}}
	}
	return r
}

// TestResolve: each refusal the endpoint answers itself, with its status,
// and the member URL an accepted request goes to.
func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tree     fakeTree
		method   string
		target   string
		user     string
		code     int
		wantPath string
	}{
		{"starting", fakeTree{}, "GET", "/containerLogs/shop/web-0/web", "apiserver", http.StatusServiceUnavailable, ""},
		{"unknown path", fakeTree{synced: true}, "GET", "/pods", "apiserver", http.StatusNotFound, ""},
		{"logs by POST", fakeTree{synced: true}, "POST", "/containerLogs/shop/web-0/web", "apiserver", http.StatusMethodNotAllowed, ""},
		{"exec by PUT", fakeTree{synced: true}, "PUT", "/exec/shop/web-0/web", "apiserver", http.StatusMethodNotAllowed, ""},
		{"no such pod", fakeTree{synced: true}, "GET", "/containerLogs/shop/db-0/db", "apiserver", http.StatusForbidden, ""},
		{"no certificate", fakeTree{synced: true}, "GET", "/containerLogs/shop/web-0/web", "", http.StatusForbidden, ""},
		{"not allowed", fakeTree{synced: true}, "GET", "/containerLogs/shop/web-0/web", "intruder", http.StatusForbidden, ""},
		{"member not connected", fakeTree{synced: true, upstream: &NotConnectedError{Node: "kosmos-a"}}, "GET", "/containerLogs/shop/web-0/web", "apiserver", http.StatusServiceUnavailable, ""},
		{"no copy in the member", fakeTree{synced: true, upstream: &NoCopyError{Namespace: "shop", Pod: "web-0", Cluster: "a"}}, "GET", "/containerLogs/shop/web-0/web", "apiserver", http.StatusNotFound, ""},
		{"member transport", fakeTree{synced: true, upstream: errors.New("no TLS config")}, "GET", "/containerLogs/shop/web-0/web", "apiserver", http.StatusInternalServerError, ""},
		{"logs", fakeTree{synced: true}, "GET", "/containerLogs/shop/web-0/web?tailLines=5&follow=true&debug=1", "apiserver", 0,
			"https://member-a:6443/prefix/api/v1/namespaces/shop/pods/web-0/log?container=web&follow=true&tailLines=5"},
		{"exec", fakeTree{synced: true}, "POST", "/exec/shop/web-0/web?command=cat&command=-&input=1&output=1", "apiserver", 0,
			"https://member-a:6443/prefix/api/v1/namespaces/shop/pods/web-0/exec?command=cat&command=-&container=web&stdin=1&stdout=1"},
		{"port-forward", fakeTree{synced: true}, "GET", "/portForward/shop/web-0?port=8080", "apiserver", 0,
			"https://member-a:6443/prefix/api/v1/namespaces/shop/pods/web-0/portforward?ports=8080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.tree.allow = map[string]bool{"apiserver": true}
			s := &Server{Tree: &tc.tree}
			target, _, ref := s.resolve(request(tc.method, tc.target, tc.user))
			switch {
			case tc.code != 0 && (ref == nil || ref.code != tc.code):
				t.Errorf("refusal %+v, want status %d", ref, tc.code)
			case tc.code == 0 && ref != nil:
				t.Errorf("refused: %+v", ref)
			case tc.code == 0 && target.String() != tc.wantPath:
				t.Errorf("target %s\nwant   %s", target, tc.wantPath)
			}
		})
	}
}

// TestAuthorizeCaches: one review per user, verb and node while the
// answer holds.
func TestAuthorizeCaches(t *testing.T) {
	tree := &fakeTree{synced: true, allow: map[string]bool{"apiserver": true}}
	s := &Server{Tree: tree}
	for range 3 {
		if err := s.authorize(request("GET", "/", "apiserver"), "get", "kosmos-a"); err != nil {
			t.Fatal(err)
		}
		if err := s.authorize(request("GET", "/", "intruder"), "get", "kosmos-a"); err == nil {
			t.Fatal("intruder allowed")
		}
	}
	if tree.reviews != 2 {
		t.Errorf("%d reviews, want 2 (one per user)", tree.reviews)
	}
}
