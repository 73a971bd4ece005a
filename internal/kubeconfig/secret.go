// Package kubeconfig reads the kubeconfig Secrets that reach member
// clusters, for every component that needs them (reconciler, tree).
//
// Whoever can write a Secret in the namespace Kosmos reads is not trusted
// with the reader's own disk or network position: a kubeconfig from a
// Secret may carry only inline data. File paths (tokenFile, client
// certificate and key, certificate authority) would make the reader send
// its own files (its ServiceAccount token, say) to a server of the
// writer's choosing; a proxy URL or insecure-skip-tls-verify would let the
// writer read the traffic. Exec plugins and auth providers would run
// programs. All are refused; insecure-skip-tls-verify only is accepted
// when Options.AllowInsecureSkipTLSVerify says so (a flag of each
// component, off by default).
package kubeconfig

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Options loosen what a kubeconfig read from a Secret may hold. The zero
// value is the strict default.
type Options struct {
	// AllowInsecureSkipTLSVerify accepts clusters marked
	// insecure-skip-tls-verify (test setups whose API server has no
	// verifiable certificate). Off, such a kubeconfig is refused.
	AllowInsecureSkipTLSVerify bool
}

// FromSecret reads the kubeconfig the reference names (namespace defaults
// to namespace, key to v1alpha1.DefaultSecretKey) from the host through hc.
// Only inline data is accepted (see the package comment and opts), and no
// error quotes the Secret. version is the Secret's resourceVersion: equal
// versions, equal credentials.
func FromSecret(ctx context.Context, hc client.Client, ref v1alpha1.SecretKeyRef, namespace string, opts Options) (cfg *rest.Config, version string, err error) {
	ns := cmp.Or(ref.Namespace, namespace)
	key := cmp.Or(ref.Key, v1alpha1.DefaultSecretKey)
	var s corev1.Secret
	if err := hc.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "", fmt.Errorf("kubeconfig Secret %s/%s not found", ns, ref.Name)
		}
		return nil, "", fmt.Errorf("kubeconfig Secret %s/%s: %w", ns, ref.Name, err)
	}
	data, ok := s.Data[key]
	if !ok {
		return nil, "", fmt.Errorf("kubeconfig Secret %s/%s has no key %q", ns, ref.Name, key)
	}
	// The parse error is left out on purpose: it may quote the Secret.
	kc, err := clientcmd.Load(data)
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig Secret %s/%s key %q is not a valid kubeconfig", ns, ref.Name, key)
	}
	if err := CheckInline(kc, opts); err != nil {
		return nil, "", fmt.Errorf("kubeconfig Secret %s/%s key %q: %w", ns, ref.Name, key, err)
	}
	cfg, err = clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig Secret %s/%s key %q: no usable current context", ns, ref.Name, key)
	}
	return cfg, s.ResourceVersion, nil
}

// CheckInline returns an error naming the first user or cluster of kc (in
// name order) that holds more than inline data, and the field; it never
// quotes a value.
func CheckInline(kc *clientcmdapi.Config, opts Options) error {
	for _, name := range slices.Sorted(maps.Keys(kc.AuthInfos)) {
		if field := userProblem(kc.AuthInfos[name]); field != "" {
			return fmt.Errorf("user %q %s; a kubeconfig Secret carries only inline credentials (a token, or an inline client certificate and key)", name, field)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(kc.Clusters)) {
		if field := clusterProblem(kc.Clusters[name], opts); field != "" {
			return fmt.Errorf("cluster %q %s", name, field)
		}
	}
	return nil
}

func userProblem(ai *clientcmdapi.AuthInfo) string {
	switch {
	case ai == nil:
		return ""
	case ai.Exec != nil:
		return "runs an exec plugin (exec), which Kosmos never does"
	case ai.AuthProvider != nil:
		return "uses an auth provider (auth-provider), which Kosmos never does"
	case ai.TokenFile != "":
		return "names a file (tokenFile)"
	case ai.ClientCertificate != "":
		return "names a file (client-certificate)"
	case ai.ClientKey != "":
		return "names a file (client-key)"
	}
	return ""
}

func clusterProblem(c *clientcmdapi.Cluster, opts Options) string {
	switch {
	case c == nil:
		return ""
	case c.CertificateAuthority != "":
		return "names a file (certificate-authority); put the CA inline in certificate-authority-data"
	case c.ProxyURL != "":
		return "sets proxy-url; a kubeconfig Secret reaches its server directly"
	case c.InsecureSkipTLSVerify && !opts.AllowInsecureSkipTLSVerify:
		return "sets insecure-skip-tls-verify; give the server's CA in certificate-authority-data (or start the component with --allow-insecure-kubeconfig)"
	}
	return ""
}
