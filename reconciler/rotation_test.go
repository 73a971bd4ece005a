package reconciler_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/kubeconfig"
	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// rotationTopology: a host (the controller's own credentials) and a member
// reached through kubeconfig Secret kosmos-system/kubeconfig-member-a.
const rotationTopology = `
apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: { name: rot }
spec:
  clusters:
    - name: host
      role: host
      kubeconfig: { context: host }
      network: { podCIDRs: [10.10.0.0/16], serviceCIDRs: [10.11.0.0/16] }
    - name: member-a
      role: member
      kubeconfig: { secretRef: { name: kubeconfig-member-a } }
      network: { podCIDRs: [10.20.0.0/16], serviceCIDRs: [10.21.0.0/16] }
`

// TestRotatedTokenTakenUp: the member's kubeconfig Secret holds a
// short-lived ServiceAccount token; it is rotated (the Secret rewritten
// with a new token) and the old token revoked. The running controller
// takes the new one up at its next resync and keeps writing the member:
// a node that joins afterwards gets its NodeConfig. Without re-reading the
// Secret, it would keep the revoked token and fail with 401 forever.
func TestRotatedTokenTakenUp(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{Names: []string{"host", "member-a"}, CRDDirs: []string{filepath.Join("..", "kustomize", "base", "crds")}})
	clients := env.ClientsT(t)
	host, member := clients["host"], clients["member-a"]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	memberCS, err := kubernetes.NewForConfig(env.Cluster("member-a").Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct {
		c              client.Client
		name, ip, cidr string
	}{
		{host, "host-n1", "192.168.1.11", "10.10.1.0/24"}, {member, "member-a-n1", "192.168.2.11", "10.20.1.0/24"},
	} {
		if err := testenv.CreateNode(ctx, n.c, n.name, []string{n.ip}, []string{n.cidr}, nil); err != nil {
			t.Fatal(err)
		}
	}
	const ns = "kosmos-system"
	for _, c := range []client.Client{host, member} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	// The member's identity (any rights will do here: this test is about
	// the token's lifetime, kustomize's about its rights).
	if err := member.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kosmos-host-reconciler"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := memberCS.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "rot"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "kosmos-host-reconciler"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kc, oldToken := boundKubeconfig(ctx, t, memberCS, env.Cluster("member-a").Config, "anchor-1")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kubeconfig-member-a"}, Data: map[string][]byte{"kubeconfig": kc}}
	if err := host.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(path, []byte(rotationTopology), 0o600); err != nil {
		t.Fatal(err)
	}
	ctl := &reconciler.Controller{
		Source: reconciler.FileSource{Path: path},
		Connect: func(tp *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
			return reconciler.ConnectSecrets(ctx, env.Cluster("host").Config, tp, ns, kubeconfig.Options{})
		},
		Resync: time.Second, ClusterTimeout: 3 * time.Second, Prune: true,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = ctl.Run(ctx) }()
	defer func() { cancel(); <-done }()
	hasNodeConfig := func(name string) func() error {
		return func() error { return member.Get(ctx, client.ObjectKey{Name: name}, &v1alpha1.NodeConfig{}) }
	}
	poll.NoError(t, 60*time.Second, "NodeConfig member-a-n1 in the member", hasNodeConfig("member-a-n1"))

	// Rotate: a new token in the Secret, then the old one revoked.
	secret.Data["kubeconfig"], _ = boundKubeconfig(ctx, t, memberCS, env.Cluster("member-a").Config, "anchor-2")
	if err := host.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if err := memberCS.CoreV1().Secrets(ns).Delete(ctx, "anchor-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The API server caches authentications for a few seconds: wait until
	// the old token is really refused before the node joins.
	old := rest.AnonymousClientConfig(env.Cluster("member-a").Config)
	old.BearerToken = oldToken
	oldCS, err := kubernetes.NewForConfig(old)
	if err != nil {
		t.Fatal(err)
	}
	poll.NoError(t, 60*time.Second, "the old token refused", func() error {
		_, err := oldCS.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if !apierrors.IsUnauthorized(err) {
			return fmt.Errorf("old token: %v", err)
		}
		return nil
	})
	if err := testenv.CreateNode(ctx, member, "member-a-n2", []string{"192.168.2.12"}, []string{"10.20.2.0/24"}, nil); err != nil {
		t.Fatal(err)
	}
	poll.NoError(t, 30*time.Second, "NodeConfig member-a-n2 in the member, written with the rotated token", hasNodeConfig("member-a-n2"))
}

// boundKubeconfig mints a one-hour token of kosmos-system/kosmos-host-reconciler
// in the member, bound to a Secret named anchor (deleting it revokes the
// token), and returns a kubeconfig that uses it, and the token.
func boundKubeconfig(ctx context.Context, t *testing.T, cs kubernetes.Interface, admin *rest.Config, anchor string) ([]byte, string) {
	t.Helper()
	a, err := cs.CoreV1().Secrets("kosmos-system").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: anchor}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts("kosmos-system").CreateToken(ctx, "kosmos-host-reconciler", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &exp, BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: a.Name, UID: a.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token bound to Secret %s: %v", anchor, err)
	}
	kc, err := clientcmd.Write(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"m": {Server: admin.Host, CertificateAuthorityData: admin.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"m": {Token: tr.Status.Token}},
		Contexts:       map[string]*clientcmdapi.Context{"m": {Cluster: "m", AuthInfo: "m"}},
		CurrentContext: "m",
	})
	if err != nil {
		t.Fatal(fmt.Errorf("kubeconfig: %w", err))
	}
	return kc, tr.Status.Token
}
