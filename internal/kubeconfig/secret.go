// Package kubeconfig reads the kubeconfig Secrets that reach member
// clusters, for every component that needs them (reconciler, tree).
package kubeconfig

import (
	"cmp"
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// FromSecret reads the kubeconfig the reference names (namespace defaults
// to namespace, key to v1alpha1.DefaultSecretKey) from the host through hc.
// Kubeconfigs that would run a program (exec plugins, auth providers) are
// refused, and no error quotes the Secret. version is the Secret's
// resourceVersion: equal versions, equal credentials.
func FromSecret(ctx context.Context, hc client.Client, ref v1alpha1.SecretKeyRef, namespace string) (cfg *rest.Config, version string, err error) {
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
	for name, ai := range kc.AuthInfos {
		if ai.Exec != nil || ai.AuthProvider != nil {
			return nil, "", fmt.Errorf("kubeconfig Secret %s/%s key %q: user %q runs an exec plugin or auth provider, which Kosmos never does; use a token or client certificate", ns, ref.Name, key, name)
		}
	}
	cfg, err = clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig Secret %s/%s key %q: no usable current context", ns, ref.Name, key)
	}
	return cfg, s.ResourceVersion, nil
}
