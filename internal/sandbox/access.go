package sandbox

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hostaccess "kosmos.io/kosmos/kustomize/base/host-access"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Members are reached as in a real installation: each member gets the
// ServiceAccounts of kustomize/base/host-access, and the host's kubeconfig
// Secrets carry short-lived tokens of them (TokenRequest, TokenLifetime),
// the reconciler's in the Secret kubeconfig.secretRef names and the tree's
// in the one kubeconfig.treeSecretRef names. The sandbox rotates them as an
// operator would: new tokens written into the same Secrets well before the
// old ones expire; the reconciler and the tree take them up by themselves.
const (
	// TokenLifetime of the members' tokens the sandbox mints.
	TokenLifetime = time.Hour
	// AnnotationTokenExpires on a kubeconfig Secret says when its token
	// expires (RFC 3339).
	AnnotationTokenExpires = "kosmos.io/token-expires"
	// tokenRotation is how often the tokens are renewed.
	tokenRotation = TokenLifetime / 3
)

// applyHostAccess creates, in member cluster name, the namespace
// kosmos-system and the host's two identities with their RBAC, as
// kustomize/overlays/member does.
func (s *Sandbox) applyHostAccess(ctx context.Context, name string) error {
	c, err := client.New(s.Env.Cluster(name).Config, client.Options{})
	if err != nil {
		return err
	}
	objs := []*unstructured.Unstructured{{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": Namespace}}}}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(hostaccess.RBAC), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("kustomize/base/host-access/rbac.yaml: %w", err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	for _, u := range objs {
		if err := c.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("cluster %s: %s %s: %w", name, u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// tokenKubeconfig mints a TokenRequest token of ServiceAccount
// kosmos-system/sa in cluster name, valid TokenLifetime, and returns a
// kubeconfig that authenticates with it only, and its expiry.
func (s *Sandbox) tokenKubeconfig(ctx context.Context, name, sa string) ([]byte, time.Time, error) {
	cfg := s.Env.Cluster(name).Config
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, time.Time{}, err
	}
	exp := int64(TokenLifetime.Seconds())
	tr, err := cs.CoreV1().ServiceAccounts(Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("token of ServiceAccount %s/%s in cluster %s: %w", Namespace, sa, name, err)
	}
	kc, err := clientcmd.Write(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{name: {Server: cfg.Host, CertificateAuthorityData: cfg.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{sa: {Token: tr.Status.Token}},
		Contexts:       map[string]*clientcmdapi.Context{name: {Cluster: name, AuthInfo: sa}},
		CurrentContext: name,
	})
	return kc, tr.Status.ExpirationTimestamp.Time, err
}

// kubeconfigSecret is one kubeconfig Secret of the topology and what goes
// into it: a token of account in cluster, or (account empty) the cluster's
// administrator kubeconfig.
type kubeconfigSecret struct {
	ref              v1alpha1.SecretKeyRef
	cluster, account string
}

// kubeconfigSecrets are the Secrets the topology names: the host's holds
// its administrator kubeconfig (the host's components run with it here); a
// member's secretRef the reconciler's token and its treeSecretRef the
// tree's. A member that names no treeSecretRef shares one Secret between
// both components, so it gets the administrator kubeconfig, as before
// there were two identities.
func (s *Sandbox) kubeconfigSecrets() []kubeconfigSecret {
	var out []kubeconfigSecret
	for _, c := range s.Topology.Spec.Clusters {
		k := c.Kubeconfig
		switch {
		case c.Role != v1alpha1.RoleMember:
			if k.SecretRef != nil {
				out = append(out, kubeconfigSecret{ref: *k.SecretRef, cluster: c.Name})
			}
		case c.SharesTreeIdentity():
			out = append(out, kubeconfigSecret{ref: *k.SecretRef, cluster: c.Name})
		default:
			if k.SecretRef != nil {
				out = append(out, kubeconfigSecret{ref: *k.SecretRef, cluster: c.Name, account: hostaccess.ReconcilerAccount})
			}
			if k.TreeSecretRef != nil {
				out = append(out, kubeconfigSecret{ref: *k.TreeSecretRef, cluster: c.Name, account: hostaccess.TreeAccount})
			}
		}
	}
	return out
}

// writeKubeconfigSecrets writes (or rewrites, with fresh tokens) every
// kubeconfig Secret of the topology in the host, through cs.
func (s *Sandbox) writeKubeconfigSecrets(ctx context.Context, cs kubernetes.Interface) error {
	var errs []error
	for _, ks := range s.kubeconfigSecrets() {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cmp.Or(ks.ref.Namespace, Namespace)}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			errs = append(errs, fmt.Errorf("namespace %s for kubeconfig Secrets: %w", ns.Name, err))
			continue
		}
		errs = append(errs, s.writeKubeconfigSecret(ctx, cs, ks))
	}
	return errors.Join(errs...)
}

func (s *Sandbox) writeKubeconfigSecret(ctx context.Context, cs kubernetes.Interface, ks kubeconfigSecret) error {
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: cmp.Or(ks.ref.Namespace, Namespace), Name: ks.ref.Name, Annotations: map[string]string{}}}
	key := cmp.Or(ks.ref.Key, v1alpha1.DefaultSecretKey)
	var kc []byte
	var err error
	if ks.account == "" {
		kc, err = s.Env.KubeconfigFor(ks.cluster)
	} else {
		var exp time.Time
		kc, exp, err = s.tokenKubeconfig(ctx, ks.cluster, ks.account)
		sec.Annotations[AnnotationTokenExpires] = exp.UTC().Format(time.RFC3339)
	}
	if err != nil {
		return err
	}
	where := fmt.Sprintf("kubeconfig Secret %s/%s of cluster %s", sec.Namespace, sec.Name, ks.cluster)
	have, err := cs.CoreV1().Secrets(sec.Namespace).Get(ctx, sec.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		sec.Data = map[string][]byte{key: kc}
		_, err = cs.CoreV1().Secrets(sec.Namespace).Create(ctx, sec, metav1.CreateOptions{})
	case err == nil:
		have.Data = map[string][]byte{key: kc}
		have.Annotations = sec.Annotations
		_, err = cs.CoreV1().Secrets(sec.Namespace).Update(ctx, have, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}

// rotateTokens rewrites the kubeconfig Secrets with fresh tokens every
// tokenRotation until ctx ends.
func (s *Sandbox) rotateTokens(ctx context.Context, cs kubernetes.Interface) {
	t := time.NewTicker(tokenRotation)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.writeKubeconfigSecrets(ctx, cs); err != nil && ctx.Err() == nil {
				s.o.Log.Error("rotate the members' tokens", "err", err)
			}
		}
	}
}
