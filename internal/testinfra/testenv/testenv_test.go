package testenv_test

import (
	"context"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestTwoIndependentClusters starts two real control planes, installs the
// KosmosTopology CRD in one and stores the example topology there as an
// object; the other cluster knows nothing of it.
func TestTwoIndependentClusters(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{Names: []string{"host", "member"}})
	ctx := context.Background()
	host, member := env.Cluster("host"), env.Cluster("member")

	if _, err := envtest.InstallCRDs(host.Config, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join("..", "..", "..", "kustomize", "base", "crds")}, ErrorIfPathMissing: true,
	}); err != nil {
		t.Fatalf("install CRDs in host: %v", err)
	}

	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	hc, err := client.New(host.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}

	topo, err := schema.LoadFile(filepath.Join("..", "..", "..", "topology.example.yaml"))
	if err != nil {
		t.Fatalf("load example: %v", err)
	}
	topo.Namespace = "default"
	if err := hc.Create(ctx, topo); err != nil {
		t.Fatalf("create KosmosTopology in host: %v", err)
	}
	var got v1alpha1.KosmosTopology
	if err := hc.Get(ctx, client.ObjectKey{Namespace: "default", Name: "example"}, &got); err != nil {
		t.Fatalf("get KosmosTopology: %v", err)
	}
	if len(got.Spec.Clusters) != 4 || got.Spec.Clusters[2].Network.Mode != v1alpha1.ModeGateway {
		t.Fatalf("stored topology lost data: %+v", got.Spec.Clusters)
	}
	if p := schema.Validate(&got); len(p) != 0 {
		t.Fatalf("the stored topology no longer validates: %v", p)
	}

	// The member is a separate cluster, reached through its own kubeconfig
	// context: it has no KosmosTopology type and does not see host objects.
	kc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: env.KubeconfigPath},
		&clientcmd.ConfigOverrides{CurrentContext: "member"}).ClientConfig()
	if err != nil {
		t.Fatalf("member context from kubeconfig: %v", err)
	}
	if kc.Host != member.Config.Host || kc.Host == host.Config.Host {
		t.Fatalf("member context points at %s; member is %s, host %s", kc.Host, member.Config.Host, host.Config.Host)
	}
	mc, err := client.New(kc, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	err = mc.Get(ctx, client.ObjectKey{Namespace: "default", Name: "example"}, &v1alpha1.KosmosTopology{})
	if !meta.IsNoMatchError(err) && !apierrors.IsNotFound(err) {
		t.Fatalf("member should not know KosmosTopology, got err=%v", err)
	}
	if err := mc.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "only-in-member"}}); err != nil {
		t.Fatal(err)
	}
	if err := hc.Get(ctx, client.ObjectKey{Name: "only-in-member"}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace created in member is visible in host: err=%v", err)
	}

	dc, err := discovery.NewDiscoveryClientForConfig(host.Config)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.Minor != "36" {
		t.Errorf("kube-apiserver minor version %q, want 36 (same as the client libraries)", v.Minor)
	}
}
