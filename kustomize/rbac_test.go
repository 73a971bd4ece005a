package kustomize_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/internal/kubeconfig"
	"kosmos.io/kosmos/internal/leader"
	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/nodeagent"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/scheduler"
	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree"
	"kosmos.io/kosmos/tree/translate"
)

// rbacKinds are the objects that make up the components' identities and
// permissions.
var rbacKinds = []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

// testTopology is the topology the reconciler follows in the RBAC test:
// the host (reached with the reconciler's own ServiceAccount) and one member
// (reached through two kubeconfig Secrets: the reconciler's and the tree's).
const testTopology = `
apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata:
  name: kosmos
  namespace: kosmos-system
spec:
  clusters:
    - name: host
      role: host
      kubeconfig: { context: host }
      # Where the members' pods reach the host's API server (they then get
      # the host's token for their account).
      apiEndpoint: https://10.0.0.10:6443
      network: { podCIDRs: [10.10.0.0/16], serviceCIDRs: [10.11.0.0/16] }
    - name: member-a
      role: member
      kubeconfig: { secretRef: { name: kubeconfig-member-a }, treeSecretRef: { name: kubeconfig-member-a, namespace: kosmos-tree }, context: member-a }
      network: { podCIDRs: [10.20.0.0/16], serviceCIDRs: [10.21.0.0/16] }
      tree: { mode: Aggregate }
`

// applyRBAC applies, for real, the namespace, ServiceAccount and RBAC
// objects an overlay yields.
func applyRBAC(ctx context.Context, t *testing.T, admin *rest.Config, overlay string) {
	t.Helper()
	a := newApplier(t, admin)
	applied := 0
	for _, u := range build(t, overlay) {
		if slices.Contains(rbacKinds, u.GetKind()) {
			if err := a.apply(ctx, u, false); err != nil {
				t.Fatalf("apply %s of %s: %v", objKey(u), overlay, err)
			}
			applied++
		}
	}
	t.Logf("applied %d namespace, ServiceAccount and RBAC objects of %s", applied, overlay)
}

// saConfig mints a short-lived token for a ServiceAccount (TokenRequest,
// one hour: what the documented `kubectl create token --duration` gives)
// and returns a config that authenticates with that token only, as the
// component's pod would.
func saConfig(ctx context.Context, t *testing.T, admin *rest.Config, cs kubernetes.Interface, sa string) *rest.Config {
	t.Helper()
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts("kosmos-system").CreateToken(ctx, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for ServiceAccount kosmos-system/%s: %v", sa, err)
	}
	cfg := &rest.Config{Host: admin.Host, BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: admin.CAData}, QPS: 100, Burst: 200}
	// Prove the config carries no other credential: the server sees the
	// ServiceAccount.
	cs2, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	who, err := cs2.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("whoami as %s: %v", sa, err)
	}
	if want := "system:serviceaccount:kosmos-system:" + sa; who.Status.UserInfo.Username != want {
		t.Fatalf("token authenticates as %q, want %q", who.Status.UserInfo.Username, want)
	}
	return cfg
}

// waitFor polls cond until it holds (60 s at most); what and the last
// reason cond gave go into the failure.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	poll.NoError(t, 60*time.Second, what, func() error {
		if ok, why := cond(); !ok {
			return errors.New(why)
		}
		return nil
	})
}

// TestComponentsRunUnderTheirServiceAccounts applies the host overlay's
// namespace, ServiceAccounts and RBAC for real into a host control plane
// (without the CRDs: the reconciler installs them) and runs the real code
// of each component with nothing but a token of its own ServiceAccount:
//
//   - the reconciler, as `kosmos reconcile --topology-object
//     kosmos-system/kosmos --connect secrets --leader-elect` runs it: CRDs
//     installed, the Lease taken, the topology object followed, a member
//     reached through its kubeconfig Secret, NodeConfigs and a Cluster
//     object applied, status Ready=True and an event on the object;
//   - the node agent's API side: it reads its NodeConfig and writes its
//     status;
//   - the tree, from the Cluster object the reconciler wrote: the virtual
//     node, its Lease in kube-node-lease, the Cluster status, and a host pod
//     bound to the virtual node run in the member with its ConfigMap and a
//     host ServiceAccount token;
//   - the scheduler (kube-scheduler with the Kosmos plugins, the shipped
//     configuration): it binds a pod.
//
// The member is reached by the reconciler with a token of the member
// overlay's kosmos-host-reconciler ServiceAccount and by the tree with one
// of kosmos-host-tree, each through its own kubeconfig Secret, so the
// member-side RBAC of each identity is exercised the same way. The tree
// mints host tokens only in a namespace that opted in (label and
// RoleBinding), and refuses kube-system and an unlabelled namespace even
// where a RoleBinding lets it.
//
// Then SubjectAccessReviews show what each ServiceAccount may NOT do.
func TestComponentsRunUnderTheirServiceAccounts(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{Names: []string{"host", "member-a"}})
	admin := env.Cluster("host").Config
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	scheme, err := reconciler.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	host, err := client.New(admin, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	member, err := client.New(env.Cluster("member-a").Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}

	applyRBAC(ctx, t, admin, "overlays/host")
	memberAdmin := env.Cluster("member-a").Config
	applyRBAC(ctx, t, memberAdmin, "overlays/member")
	memberCS, err := kubernetes.NewForConfig(memberAdmin)
	if err != nil {
		t.Fatal(err)
	}

	// What an operator provides: the member's two kubeconfig Secrets, each
	// holding a short-lived token of its own ServiceAccount in the member
	// (base/host-access), and the machines (Node objects) of both clusters.
	// The tree's in kosmos-tree, where the reconciler cannot read it.
	for ns, sa := range map[string]string{"kosmos-system": "kosmos-host-reconciler", "kosmos-tree": "kosmos-host-tree"} {
		writeKubeconfigSecret(ctx, t, host, ns, "kubeconfig-member-a", saConfig(ctx, t, memberAdmin, memberCS, sa))
	}
	if err := testenv.CreateNode(ctx, host, "host-n1", []string{"192.168.1.11"}, []string{"10.10.1.0/24"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := testenv.CreateNode(ctx, member, "member-a-n1", []string{"192.168.2.11"}, []string{"10.20.1.0/24"}, nil); err != nil {
		t.Fatal(err)
	}
	// The member runs Calico: its pod ranges are read from a block
	// affinity, and the reconciler keeps a disabled IPPool for the host's
	// ranges there (kosmos-host-reconciler's rules for the CNI kinds).
	if _, err := envtest.InstallCRDs(memberAdmin, envtest.CRDInstallOptions{Paths: []string{filepath.Join("..", "reconciler", "testdata", "cni-crds")}}); err != nil {
		t.Fatal(err)
	}
	block := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "crd.projectcalico.org/v1", "kind": "BlockAffinity", "metadata": map[string]any{"name": "member-a-n1-10-20-7-0-26"},
		"spec": map[string]any{"node": "member-a-n1", "cidr": "10.20.7.0/26", "state": "confirmed", "deleted": "false"},
	}}
	if err := member.Create(ctx, block); err != nil {
		t.Fatal(err)
	}

	ok := map[string]bool{}
	run := func(name string, f func(t *testing.T)) { ok[name] = t.Run(name, f) }
	run("reconciler", func(t *testing.T) { runReconciler(ctx, t, admin, cs, host, member) })
	run("agent", func(t *testing.T) { runAgent(ctx, t, admin, cs, host) })
	run("tree", func(t *testing.T) { runTree(ctx, t, admin, cs, host, member) })
	run("scheduler", func(t *testing.T) { runScheduler(ctx, t, admin, cs, host) })
	run("denied", func(t *testing.T) { checkDenied(ctx, t, cs, memberCS) })
	run("member identities", func(t *testing.T) { checkMemberIdentities(ctx, t, memberCS) })
	t.Log("\n" + findingsTable(ok))
}

// findingsTable is the issue 16 privilege findings this test covers, with
// the subtests that prove each fixed and their result.
func findingsTable(ok map[string]bool) string {
	rows := []struct{ finding, tests string }{
		{"one member credential for reconciler and tree", "reconciler, tree, member identities"},
		{"reconciler identity creates pods/secrets/SAs, execs in members", "member identities"},
		{"tree identity writes NodeConfigs/CRDs in members", "member identities"},
		{"reconciler reads the tree's member credential in the host", "reconciler"},
		{"tree mints tokens for any ServiceAccount (RBAC)", "denied"},
		{"tree mints tokens in kube-system / unlabelled namespaces (code)", "tree"},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-66s %-38s %s\n", "FINDING", "SUBTESTS", "RESULT")
	for _, r := range rows {
		res := "pass"
		for _, name := range strings.Split(r.tests, ", ") {
			if !ok[name] {
				res = "FAIL"
			}
		}
		fmt.Fprintf(&b, "%-66s %-38s %s\n", r.finding, r.tests, res)
	}
	return b.String()
}

// ipPool is an empty Calico IPPool to read into.
func ipPool() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("crd.projectcalico.org/v1")
	u.SetKind("IPPool")
	return u
}

// writeKubeconfigSecret stores, in the host's namespace ns, a kubeconfig
// Secret that reaches the member as cfg's token does.
func writeKubeconfigSecret(ctx context.Context, t *testing.T, host client.Client, ns, name string, cfg *rest.Config) {
	t.Helper()
	kc, err := clientcmd.Write(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"member-a": {Server: cfg.Host, CertificateAuthorityData: cfg.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"kosmos": {Token: cfg.BearerToken}},
		Contexts:       map[string]*clientcmdapi.Context{"member-a": {Cluster: "member-a", AuthInfo: "kosmos"}},
		CurrentContext: "member-a",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{"kubeconfig": kc}}); err != nil {
		t.Fatal(err)
	}
}

// runReconciler runs the reconciler the way runReconcile wires it in a
// cluster, with the reconciler's token only.
func runReconciler(ctx context.Context, t *testing.T, admin *rest.Config, cs kubernetes.Interface, host, member client.Client) {
	cfg := saConfig(ctx, t, admin, cs, "kosmos-reconciler")
	scheme, err := reconciler.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	sa, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	// First the CRDs, which only the reconciler installs here: the
	// KosmosTopology can be created only after.
	if err := reconciler.EnsureCRDs(ctx, sa); err != nil {
		t.Fatalf("install CRDs as kosmos-reconciler: %v", err)
	}
	var topo v1alpha1.KosmosTopology
	if err := yaml.Unmarshal([]byte(testTopology), &topo); err != nil {
		t.Fatal(err)
	}
	if err := host.Create(ctx, &topo); err != nil {
		t.Fatalf("create the KosmosTopology: %v", err)
	}

	rec, stopRec, err := reconciler.NewEventRecorder(cfg, "kosmos-reconciler")
	if err != nil {
		t.Fatal(err)
	}
	defer stopRec()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctl := &reconciler.Controller{
		Resync: time.Minute, ClusterTimeout: 30 * time.Second, Prune: true, Log: log,
		Source: &reconciler.ObjectSource{Client: sa, Namespace: "kosmos-system", Name: "kosmos", Events: rec},
		Connect: func(tp *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
			return reconciler.ConnectSecrets(ctx, cfg, tp, "kosmos-system", kubeconfig.Options{})
		},
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- leader.RunIf(rctx, true, cfg, leader.Options{Namespace: "kosmos-system", Name: "kosmos-reconciler", Log: log}, ctl.Run)
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("reconciler: %v", err)
		}
	}()

	waitFor(t, "KosmosTopology kosmos-system/kosmos Ready=True", func() (bool, string) {
		var got v1alpha1.KosmosTopology
		if err := host.Get(ctx, client.ObjectKeyFromObject(&topo), &got); err != nil {
			return false, err.Error()
		}
		ready := apimeta.FindStatusCondition(got.Status.Conditions, "Ready")
		if ready == nil || got.Status.ObservedGeneration != got.Generation {
			return false, fmt.Sprintf("status %+v", got.Status)
		}
		return ready.Status == metav1.ConditionTrue, ready.Reason + ": " + ready.Message
	})
	if l, err := cs.CoordinationV1().Leases("kosmos-system").Get(ctx, "kosmos-reconciler", metav1.GetOptions{}); err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		t.Errorf("leader Lease kosmos-system/kosmos-reconciler has no holder: %v", err)
	}
	for _, c := range []struct {
		c    client.Client
		obj  client.Object
		name string
	}{
		{host, &v1alpha1.NodeConfig{}, "host-n1"},
		{member, &v1alpha1.NodeConfig{}, "member-a-n1"},
		{host, &v1alpha1.Cluster{}, "member-a"},
		{member, ipPool(), "kosmos-host-10-10-0-0-16"},
	} {
		if err := c.c.Get(ctx, client.ObjectKey{Name: c.name}, c.obj); err != nil {
			t.Errorf("the reconciler did not write %T %s: %v", c.obj, c.name, err)
		}
	}
	// The tree gets only its own kubeconfig reference, never the
	// reconciler's, and the reconciler cannot read the Secret it names.
	var cl v1alpha1.Cluster
	if err := host.Get(ctx, client.ObjectKey{Name: "member-a"}, &cl); err != nil {
		t.Fatal(err)
	}
	if ref := cl.Spec.Kubeconfig; ref.Namespace != "kosmos-tree" || ref.Name != "kubeconfig-member-a" {
		t.Errorf("Cluster member-a names kubeconfig Secret %s/%s, want the tree's kosmos-tree/kubeconfig-member-a", ref.Namespace, ref.Name)
	}
	if a := (access{sa: "kosmos-reconciler", verb: "get", resource: "secrets", namespace: cl.Spec.Kubeconfig.Namespace, name: cl.Spec.Kubeconfig.Name}); allowed(ctx, t, cs, a) {
		t.Errorf("the reconciler can read the tree's kubeconfig Secret: %s", a)
	}
	waitFor(t, "an event on the KosmosTopology", func() (bool, string) {
		evs, err := cs.CoreV1().Events("kosmos-system").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=kosmos"})
		if err != nil {
			return false, err.Error()
		}
		return len(evs.Items) > 0, "none yet"
	})
}

// runAgent runs the node agent's API side with the agent's token: it
// follows NodeConfig host-n1 and reports an applied pass in its status.
func runAgent(ctx context.Context, t *testing.T, admin *rest.Config, cs kubernetes.Interface, host client.Client) {
	cfg := saConfig(ctx, t, admin, cs, "kosmos-agent")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	src, err := nodeagent.NewAPISource(cfg, "host-n1", log)
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	defer stop()
	go src.Watch(actx)
	var spec *v1alpha1.NodeConfigSpec
	waitFor(t, "the agent to read NodeConfig host-n1", func() (bool, string) {
		s, err := src.Spec()
		if err != nil {
			return false, err.Error()
		}
		spec = s
		return s != nil, "no spec"
	})
	src.Report(actx)(spec, nodeagent.Result{}, nil)
	waitFor(t, "NodeConfig host-n1 status Applied=True", func() (bool, string) {
		var nc v1alpha1.NodeConfig
		if err := host.Get(ctx, client.ObjectKey{Name: "host-n1"}, &nc); err != nil {
			return false, err.Error()
		}
		c := apimeta.FindStatusCondition(nc.Status.Conditions, "Applied")
		return c != nil && c.Status == metav1.ConditionTrue, fmt.Sprintf("status %+v", nc.Status)
	})
}

// runTree runs the tree with its token from the Cluster object the
// reconciler wrote, and syncs one host pod into the member.
func runTree(ctx context.Context, t *testing.T, admin *rest.Config, cs kubernetes.Interface, host, member client.Client) {
	cfg := saConfig(ctx, t, admin, cs, "kosmos-tree")
	scheme, err := reconciler.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	sa, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	// A workload in the host, bound to the member's virtual node, in a
	// namespace that opted in to host tokens (label and RoleBinding, as
	// kustomize/base/tree/rbac.yaml says). No controller-manager runs
	// here, so the namespace's default ServiceAccount is made by hand.
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{tree.LabelTreeTokens: tree.TreeTokensEnabled}}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "default"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-config"}, Data: map[string]string{"k": "v"}},
	} {
		if err := host.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	bindTokens(ctx, t, cs, "shop")

	var lastErr error
	passes := make(chan error, 1000)
	ctl := &tree.Controller{Host: sa, Config: cfg, Namespace: "kosmos-system", Interval: 200 * time.Millisecond,
		Log:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnPass: func(err error) { passes <- err }}
	tctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ctl.Run(tctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("tree: %v", err)
		}
	}()
	drain := func() {
		for {
			select {
			case err := <-passes:
				if err != nil {
					lastErr = err
				}
			default:
				return
			}
		}
	}

	vn := "kosmos-member-a"
	waitFor(t, "virtual node "+vn+", its Lease and Cluster member-a Ready=True", func() (bool, string) {
		drain()
		var n corev1.Node
		if err := host.Get(ctx, client.ObjectKey{Name: vn}, &n); err != nil {
			return false, fmt.Sprintf("node: %v (last pass: %v)", err, lastErr)
		}
		if _, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, vn, metav1.GetOptions{}); err != nil {
			return false, fmt.Sprintf("lease: %v (last pass: %v)", err, lastErr)
		}
		var cl v1alpha1.Cluster
		if err := host.Get(ctx, client.ObjectKey{Name: "member-a"}, &cl); err != nil {
			return false, err.Error()
		}
		c := apimeta.FindStatusCondition(cl.Status.Conditions, "Ready")
		return c != nil && c.Status == metav1.ConditionTrue, fmt.Sprintf("Cluster status %+v (last pass: %v)", cl.Status, lastErr)
	})

	pod := tokenPod("shop", "web", vn)
	pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "config", MountPath: "/etc/web"})
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}}}})
	if err := host.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pod shop/web and its ConfigMap and token Secret in the member", func() (bool, string) {
		drain()
		var p corev1.Pod
		if err := member.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, &p); err != nil {
			return false, fmt.Sprintf("member pod: %v (last pass: %v)", err, lastErr)
		}
		var cm corev1.ConfigMap
		if err := member.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web-config"}, &cm); err != nil {
			return false, fmt.Sprintf("member ConfigMap: %v", err)
		}
		var secrets corev1.SecretList
		if err := member.List(ctx, &secrets, client.InNamespace("shop")); err != nil {
			return false, err.Error()
		}
		for _, s := range secrets.Items {
			if len(s.Data["token"]) > 0 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("no Secret with the host token among %d in the member", len(secrets.Items))
	})
	refuseTokens(ctx, t, cs, host, member, vn)
}

// bindTokens opts a namespace in to host tokens at the RBAC level: the
// kosmos-tree-tokens ClusterRole bound there to the tree.
func bindTokens(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kosmos-tree-tokens"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kosmos-tree-tokens"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "kosmos-system", Name: "kosmos-tree"}}}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("RoleBinding %s/kosmos-tree-tokens: %v", ns, err)
	}
}

// tokenPod is a host pod bound to node that mounts its API token, as the
// host's ServiceAccount admission makes it.
func tokenPod(ns, name, node string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PodSpec{
		NodeName:           node,
		ServiceAccountName: "default",
		Tolerations:        []corev1.Toleration{{Key: tree.TaintLeaf, Operator: corev1.TolerationOpExists}},
		Containers: []corev1.Container{{Name: name, Image: "nginx", VolumeMounts: []corev1.VolumeMount{
			{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}}}},
		Volumes: []corev1.Volume{{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}}},
	}}
}

// refuseTokens: where RBAC would let the tree mint a host token (a
// RoleBinding made by mistake in kube-system, or in a namespace without
// the opt-in label), the tree still refuses, running under its own token:
// the pod gets a DependencySyncFailed event saying why, and neither it nor
// a token reaches the member. The mistaken RoleBindings are removed after.
func refuseTokens(ctx context.Context, t *testing.T, cs kubernetes.Interface, host, member client.Client, vn string) {
	for _, c := range []struct{ ns, why string }{
		{"kube-system", "never mints tokens"},
		{"plain", "has not opted in"},
	} {
		objs := []client.Object{&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: "default"}}, tokenPod(c.ns, "sneaky", vn)}
		if c.ns != "kube-system" {
			objs = append([]client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.ns}}}, objs...)
		}
		for i, o := range objs {
			if i == len(objs)-1 {
				bindTokens(ctx, t, cs, c.ns) // the mistake, before the pod
			}
			if err := host.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "the tree to refuse a host token in "+c.ns, func() (bool, string) {
			evs, err := cs.CoreV1().Events(c.ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=sneaky"})
			if err != nil {
				return false, err.Error()
			}
			for _, e := range evs.Items {
				if e.Reason == "DependencySyncFailed" && strings.Contains(e.Message, c.why) {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d events on %s/sneaky, none saying %q", len(evs.Items), c.ns, c.why)
		})
		var p corev1.Pod
		if err := member.Get(ctx, client.ObjectKey{Namespace: c.ns, Name: "sneaky"}, &p); err == nil {
			t.Errorf("pod %s/sneaky reached the member without its token being allowed", c.ns)
		}
		var s corev1.Secret
		if err := member.Get(ctx, client.ObjectKey{Namespace: c.ns, Name: translate.TokenSecretName("default")}, &s); err == nil {
			t.Errorf("a host token of %s/default reached the member", c.ns)
		}
		if err := cs.RbacV1().RoleBindings(c.ns).Delete(ctx, "kosmos-tree-tokens", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// runScheduler runs kube-scheduler with the Kosmos plugins and the shipped
// KubeSchedulerConfiguration, connected with the scheduler's token only, and
// has it bind one pod.
func runScheduler(ctx context.Context, t *testing.T, admin *rest.Config, cs kubernetes.Interface, host client.Client) {
	cfg := saConfig(ctx, t, admin, cs, "kosmos-scheduler")
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"host": {Server: cfg.Host, CertificateAuthorityData: cfg.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"kosmos-scheduler": {Token: cfg.BearerToken}},
		Contexts:       map[string]*clientcmdapi.Context{"host": {Cluster: "host", AuthInfo: "kosmos-scheduler"}},
		CurrentContext: "host",
	}, kubeconfig); err != nil {
		t.Fatal(err)
	}
	shipped, err := os.ReadFile(filepath.Join("base", "scheduler", "scheduler-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := yaml.Unmarshal(shipped, &conf); err != nil {
		t.Fatal(err)
	}
	conf["clientConnection"] = map[string]any{"kubeconfig": kubeconfig}
	// In process, without leader election: kube-scheduler exits the process
	// when it stops leading. Its Lease rights are asked in checkDenied.
	conf["leaderElection"] = map[string]any{"leaderElect": false}
	data, err := yaml.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "scheduler-config.yaml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}

	// A Ready node without the not-ready taint the API server puts on new
	// nodes (no node lifecycle controller runs here to lift it).
	if err := testenv.CreateNode(ctx, host, "host-n2", []string{"192.168.1.12"}, []string{"10.10.2.0/24"}, nil); err != nil {
		t.Fatal(err)
	}
	var n corev1.Node
	if err := host.Get(ctx, client.ObjectKey{Name: "host-n2"}, &n); err != nil {
		t.Fatal(err)
	}
	n.Spec.Taints = nil
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")}
	if err := host.Update(ctx, &n); err != nil {
		t.Fatal(err)
	}
	n.Status.Capacity, n.Status.Allocatable = res, res
	if err := host.Status().Update(ctx, &n); err != nil {
		t.Fatal(err)
	}

	sctx, stop := context.WithCancel(ctx)
	done, err := scheduler.Run(sctx, file)
	if err != nil {
		stop()
		t.Fatalf("scheduler as kosmos-scheduler: %v", err)
	}
	defer func() { stop(); <-done }()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api"}, Spec: corev1.PodSpec{
		SchedulerName: "kosmos-scheduler",
		Containers:    []corev1.Container{{Name: "api", Image: "api"}},
	}}
	if err := host.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "kosmos-scheduler to bind pod shop/api to host-n2", func() (bool, string) {
		var p corev1.Pod
		if err := host.Get(ctx, client.ObjectKeyFromObject(pod), &p); err != nil {
			return false, err.Error()
		}
		return p.Spec.NodeName == "host-n2", fmt.Sprintf("nodeName %q, conditions %+v", p.Spec.NodeName, p.Status.Conditions)
	})
}

// access is one question to the authorizer about a ServiceAccount.
type access struct {
	sa, verb, group, resource, subresource, namespace, name string
}

func (a access) String() string {
	r := a.resource
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	if a.group != "" {
		r += "." + a.group
	}
	where := "cluster-wide"
	if a.namespace != "" {
		where = "in " + a.namespace
	}
	if a.name != "" {
		r += " " + a.name
	}
	return fmt.Sprintf("%s: %s %s %s", a.sa, a.verb, r, where)
}

// allowed asks the API server's authorizer (SubjectAccessReview).
func allowed(ctx context.Context, t *testing.T, cs kubernetes.Interface, a access) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:kosmos-system:" + a.sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kosmos-system", "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource, Namespace: a.namespace, Name: a.name,
		},
	}}
	res, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SubjectAccessReview %s: %v", a, err)
	}
	return res.Status.Allowed
}

// checkDenied asks the API servers what each ServiceAccount may not do
// (and, for the components not run above, what they need).
func checkDenied(ctx context.Context, t *testing.T, cs, memberCS kubernetes.Interface) {
	denied := []access{
		// No component deletes or lists arbitrary Secrets or Nodes.
		{sa: "kosmos-reconciler", verb: "delete", resource: "secrets", namespace: "kosmos-system"},
		{sa: "kosmos-reconciler", verb: "list", resource: "secrets", namespace: "kosmos-system"},
		{sa: "kosmos-reconciler", verb: "get", resource: "secrets", namespace: "default"},
		{sa: "kosmos-reconciler", verb: "delete", resource: "nodes", name: "host-n1"},
		{sa: "kosmos-reconciler", verb: "patch", group: "apiextensions.k8s.io", resource: "customresourcedefinitions", name: "foos.example.com"},
		{sa: "kosmos-reconciler", verb: "delete", group: "apiextensions.k8s.io", resource: "customresourcedefinitions", name: "nodeconfigs.kosmos.io"},
		{sa: "kosmos-reconciler", verb: "patch", resource: "namespaces", name: "default"},
		{sa: "kosmos-reconciler", verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "kosmos-system", name: "kosmos-tree"},
		{sa: "kosmos-tree", verb: "delete", resource: "secrets", namespace: "shop"},
		{sa: "kosmos-tree", verb: "create", resource: "secrets", namespace: "shop"},
		{sa: "kosmos-tree", verb: "update", resource: "configmaps", namespace: "shop"},
		{sa: "kosmos-tree", verb: "update", resource: "pods", namespace: "shop"},
		{sa: "kosmos-tree", verb: "create", resource: "pods", namespace: "shop"},
		{sa: "kosmos-tree", verb: "delete", resource: "namespaces", name: "shop"},
		{sa: "kosmos-tree", verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "kube-system", name: "kube-scheduler"},
		// The tree patches Cluster objects (its drain finalizer, leave.go),
		// never creates or deletes them: the reconciler's.
		{sa: "kosmos-tree", verb: "delete", group: "kosmos.io", resource: "clusters", name: "member-a"},
		{sa: "kosmos-tree", verb: "create", group: "kosmos.io", resource: "clusters"},
		// Host tokens: never cluster-wide, never in kube-system or
		// kosmos-system; only where a namespace bound kosmos-tree-tokens.
		{sa: "kosmos-tree", verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "kube-system", name: "default"},
		{sa: "kosmos-tree", verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "kosmos-system", name: "kosmos-reconciler"},
		{sa: "kosmos-tree", verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "default", name: "default"},
		{sa: "kosmos-tree", verb: "create", resource: "serviceaccounts", subresource: "token"},
		// Secrets are read through the informer only: no get by name
		// outside kosmos-system, no write anywhere.
		{sa: "kosmos-tree", verb: "get", resource: "secrets", namespace: "kube-system", name: "any"},
		{sa: "kosmos-tree", verb: "create", resource: "secrets", namespace: "kosmos-system"},
		{sa: "kosmos-agent", verb: "update", group: "kosmos.io", resource: "nodeconfigs", name: "host-n1"},
		{sa: "kosmos-agent", verb: "delete", group: "kosmos.io", resource: "nodeconfigs", name: "host-n1"},
		{sa: "kosmos-agent", verb: "get", resource: "secrets", namespace: "kosmos-system"},
		{sa: "kosmos-agent", verb: "update", resource: "nodes", name: "host-n1"},
		{sa: "kosmos-dns", verb: "get", resource: "secrets", namespace: "kosmos-system"},
		{sa: "kosmos-dns", verb: "create", group: "discovery.k8s.io", resource: "endpointslices", namespace: "shop"},
		{sa: "kosmos-dns", verb: "update", group: "multicluster.x-k8s.io", resource: "serviceimports", namespace: "shop"},
		{sa: "kosmos-scheduler", verb: "get", resource: "secrets", namespace: "kosmos-system"},
		{sa: "kosmos-scheduler", verb: "update", group: "kosmos.io", resource: "distributionpolicies", name: "web"},
		{sa: "kosmos-scheduler", verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "kosmos-system", name: "kosmos-reconciler"},
	}
	// kosmos dns and kosmos scheduler do not run in this test (the DNS server
	// and kube-scheduler's own needs are covered by their packages' tests
	// with an admin client); what their code reads is asked here.
	needed := []access{
		{sa: "kosmos-dns", verb: "list", group: "multicluster.x-k8s.io", resource: "serviceimports"},
		{sa: "kosmos-dns", verb: "watch", group: "multicluster.x-k8s.io", resource: "serviceimports"},
		{sa: "kosmos-dns", verb: "watch", group: "discovery.k8s.io", resource: "endpointslices"},
		{sa: "kosmos-dns", verb: "list", resource: "services"},
		{sa: "kosmos-dns", verb: "watch", resource: "namespaces"},
		{sa: "kosmos-dns", verb: "list", resource: "pods"},
		{sa: "kosmos-scheduler", verb: "list", group: "kosmos.io", resource: "distributionpolicies"},
		{sa: "kosmos-scheduler", verb: "watch", group: "kosmos.io", resource: "distributionpolicies"},
		{sa: "kosmos-scheduler", verb: "create", resource: "pods", subresource: "binding", namespace: "shop"},
		{sa: "kosmos-scheduler", verb: "list", group: "apps", resource: "replicasets"},
		{sa: "kosmos-scheduler", verb: "update", resource: "persistentvolumeclaims", namespace: "shop"},
		{sa: "kosmos-scheduler", verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: "kosmos-system"},
		{sa: "kosmos-scheduler", verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "kosmos-system", name: "kosmos-scheduler"},
		{sa: "kosmos-scheduler", verb: "get", resource: "configmaps", namespace: "kube-system", name: "extension-apiserver-authentication"},
		{sa: "kosmos-scheduler", verb: "create", group: "authentication.k8s.io", resource: "tokenreviews"},
		{sa: "kosmos-tree", verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "shop", name: "default"},
	}
	var wrong []string
	for _, a := range denied {
		if allowed(ctx, t, cs, a) {
			wrong = append(wrong, "allowed, want denied: "+a.String())
		}
	}
	for _, a := range needed {
		if !allowed(ctx, t, cs, a) {
			wrong = append(wrong, "denied, want allowed: "+a.String())
		}
	}
	if len(wrong) > 0 {
		t.Errorf("RBAC of overlays/host:\n  %s", strings.Join(wrong, "\n  "))
	}
}

// checkMemberIdentities asks member-a's authorizer what each of the host's
// two identities there may and may not do: the reconciler's writes no pod,
// Secret, ServiceAccount nor exec; the tree's writes no NodeConfig, CRD,
// multi-cluster service nor RBAC; neither deletes or patches member nodes.
func checkMemberIdentities(ctx context.Context, t *testing.T, memberCS kubernetes.Interface) {
	const rec, tr = "kosmos-host-reconciler", "kosmos-host-tree"
	denied := []access{
		{sa: rec, verb: "create", resource: "pods", namespace: "shop"},
		{sa: rec, verb: "delete", resource: "pods", namespace: "kube-system", name: "kube-proxy"},
		{sa: rec, verb: "create", resource: "pods", subresource: "exec", namespace: "kube-system", name: "kube-proxy"},
		{sa: rec, verb: "get", resource: "pods", subresource: "log", namespace: "shop", name: "web"},
		{sa: rec, verb: "create", resource: "secrets", namespace: "shop"},
		{sa: rec, verb: "get", resource: "secrets", namespace: "kube-system", name: "any"},
		{sa: rec, verb: "list", resource: "secrets"},
		{sa: rec, verb: "create", resource: "serviceaccounts", namespace: "shop"},
		{sa: rec, verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "kube-system", name: "default"},
		{sa: rec, verb: "create", resource: "persistentvolumeclaims", namespace: "shop"},
		{sa: tr, verb: "patch", group: "kosmos.io", resource: "nodeconfigs", name: "member-a-n1"},
		{sa: tr, verb: "create", group: "kosmos.io", resource: "nodeconfigs"},
		{sa: tr, verb: "create", group: "apiextensions.k8s.io", resource: "customresourcedefinitions"},
		{sa: tr, verb: "patch", group: "apiextensions.k8s.io", resource: "customresourcedefinitions", name: "nodeconfigs.kosmos.io"},
		{sa: tr, verb: "create", group: "multicluster.x-k8s.io", resource: "serviceimports", namespace: "shop"},
		{sa: tr, verb: "create", group: "discovery.k8s.io", resource: "endpointslices", namespace: "shop"},
		{sa: tr, verb: "patch", resource: "configmaps", namespace: "kosmos-system", name: "kosmos-dns"},
		{sa: tr, verb: "patch", resource: "namespaces", name: "kosmos-system"},
		{sa: tr, verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "kube-system", name: "default"},
	}
	for _, sa := range []string{rec, tr} {
		denied = append(denied,
			access{sa: sa, verb: "delete", resource: "nodes", name: "member-a-n1"},
			access{sa: sa, verb: "patch", resource: "nodes", name: "member-a-n1"},
			access{sa: sa, verb: "delete", resource: "namespaces", name: "kube-system"},
			access{sa: sa, verb: "patch", resource: "namespaces", name: "default"},
			access{sa: sa, verb: "patch", group: "apiextensions.k8s.io", resource: "customresourcedefinitions", name: "foos.example.com"},
			access{sa: sa, verb: "create", group: "kosmos.io", resource: "clusters"},
			access{sa: sa, verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterrolebindings"},
			access{sa: sa, verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings", namespace: "shop"},
			access{sa: sa, verb: "patch", resource: "configmaps", namespace: "kosmos-system", name: "kube-root-ca.crt"},
		)
	}
	// What each one's code calls (the end-to-end runs above exercise them
	// too; asked here so a gap names the rule).
	needed := []access{
		{sa: rec, verb: "patch", group: "kosmos.io", resource: "nodeconfigs", name: "member-a-n1"},
		{sa: rec, verb: "create", group: "multicluster.x-k8s.io", resource: "serviceimports", namespace: "shop"},
		{sa: rec, verb: "patch", resource: "configmaps", namespace: "kosmos-system", name: "kosmos-dns"},
		{sa: tr, verb: "create", resource: "pods", namespace: "shop"},
		{sa: tr, verb: "create", resource: "pods", subresource: "exec", namespace: "shop", name: "web"},
		{sa: tr, verb: "create", resource: "secrets", namespace: "shop"},
		{sa: tr, verb: "create", resource: "serviceaccounts", namespace: "shop"},
		{sa: tr, verb: "update", resource: "persistentvolumeclaims", namespace: "shop", name: "data"}, // a host claim's resize
	}
	var wrong []string
	for _, a := range denied {
		if allowed(ctx, t, memberCS, a) {
			wrong = append(wrong, "allowed in member-a, want denied: "+a.String())
		}
	}
	for _, a := range needed {
		if !allowed(ctx, t, memberCS, a) {
			wrong = append(wrong, "denied in member-a, want allowed: "+a.String())
		}
	}
	if len(wrong) > 0 {
		t.Errorf("RBAC of overlays/member (base/host-access):\n  %s", strings.Join(wrong, "\n  "))
	}
}
