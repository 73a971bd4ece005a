package tree_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree"
	"kosmos.io/kosmos/tree/translate"
)

// world is a host and members on real control planes, with the tree
// controller running against them.
type world struct {
	t       testing.TB
	env     *testenv.Env
	host    client.Client
	hostCS  kubernetes.Interface
	members map[string]kubernetes.Interface
	stop    func()
	// passes receives a value when a pass of the running controller ends.
	passes chan struct{}
}

// awaitPasses waits until n more passes of the controller have ended
// (counted from now): how a test sees that something did not happen
// however often the controller looked.
func (w *world) awaitPasses(t testing.TB, n int) {
	t.Helper()
	for len(w.passes) > 0 { // passes that ended before now do not count
		<-w.passes
	}
	for range n {
		select {
		case <-w.passes:
		case <-time.After(30 * time.Second):
			t.Fatalf("no pass of the tree controller in 30 s")
		}
	}
}

// newWorld starts the clusters, creates a kubeconfig Secret for each
// member and the Cluster objects given.
func newWorld(t testing.TB, apiArgs map[string]string, clusters ...*v1alpha1.Cluster) *world {
	names := []string{"host"}
	for _, c := range clusters {
		names = append(names, c.Name)
	}
	env := testenv.StartT(t, testenv.Options{Names: names, CRDDirs: []string{filepath.Join("..", "kustomize", "base", "crds")}, APIServerArgs: apiArgs})
	s, err := reconciler.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, env: env, members: map[string]kubernetes.Interface{}}
	if w.host, err = client.New(env.Cluster("host").Config, client.Options{Scheme: s}); err != nil {
		t.Fatal(err)
	}
	w.hostCS = kubernetes.NewForConfigOrDie(env.Cluster("host").Config)
	ctx := context.Background()
	must(t, w.host.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kosmos-system"}}))
	for _, c := range clusters {
		w.members[c.Name] = kubernetes.NewForConfigOrDie(env.Cluster(c.Name).Config)
		kc, err := env.KubeconfigFor(c.Name)
		must(t, err)
		must(t, w.host.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kosmos-system", Name: "kubeconfig-" + c.Name},
			Data: map[string][]byte{"kubeconfig": kc}}))
		c.Spec.Kubeconfig = v1alpha1.SecretKeyRef{Name: "kubeconfig-" + c.Name, Namespace: "kosmos-system"}
		must(t, w.host.Create(ctx, c))
	}
	return w
}

// run starts a tree controller (opts adjust it first); stop ends it and
// waits.
func (w *world) run(grace time.Duration, opts ...func(*tree.Controller)) *tree.Controller {
	ctx, cancel := context.WithCancel(context.Background())
	w.passes = make(chan struct{}, 64)
	ctl := &tree.Controller{Host: w.host, Config: w.env.Cluster("host").Config, Namespace: "kosmos-system",
		Interval: 200 * time.Millisecond, Grace: grace, Workers: 16, QPS: 1000,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnPass: func(error) {
			select {
			case w.passes <- struct{}{}:
			default:
			}
		}}
	for _, o := range opts {
		o(ctl)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = ctl.Run(ctx) }()
	w.stop = func() { cancel(); <-done }
	w.t.Cleanup(func() { cancel(); <-done })
	return ctl
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it returns nil (45 s at most); the last error
// says what was still missing.
func waitFor(t testing.TB, what string, cond func() error) {
	t.Helper()
	poll.NoError(t, 45*time.Second, what, cond)
}

func memberNodeObj(ctx context.Context, t testing.TB, cs kubernetes.Interface, name, cpu string) {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	must(t, err)
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("2000")}
	n.Status = corev1.NodeStatus{Allocatable: res, Capacity: res, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}
	_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
	must(t, err)
}

// hostPod is a pod as the host's admission and scheduler leave it: bound
// to a virtual node, with the projected API token volume.
func hostPod(ns, name, node string) *corev1.Pod {
	mode := int32(420)
	exp := int64(3607)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			NodeName:           node,
			ServiceAccountName: "web",
			Tolerations:        []corev1.Toleration{{Key: tree.TaintLeaf, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			Containers: []corev1.Container{{Name: "web", Image: "shop/web:1.0",
				VolumeMounts: []corev1.VolumeMount{{Name: "kube-api-access-x", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}}}},
			Volumes: []corev1.Volume{{Name: "kube-api-access-x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				DefaultMode: &mode,
				Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &exp}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
				}}}}},
		},
	}
}

// runPod acts as the member's scheduler and kubelet: an unbound pod is
// bound to node, then it runs with podIP ip.
func runPod(ctx context.Context, cs kubernetes.Interface, p *corev1.Pod, node, ip string) error {
	now := metav1.Now()
	p = p.DeepCopy()
	if p.Spec.NodeName == "" {
		err := cs.CoreV1().Pods(p.Namespace).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace},
			Target: corev1.ObjectReference{Kind: "Node", Name: node}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if p, err = cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{}); err != nil {
			return err
		}
	}
	p.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}, HostIP: "192.168.2.11", StartTime: &now,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}},
	}
	for _, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
	}
	_, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

func nodeReady(ctx context.Context, cs kubernetes.Interface, name string) (corev1.ConditionStatus, error) {
	n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status, nil
		}
	}
	return "", fmt.Errorf("node %s has no Ready condition", name)
}

func wantReady(ctx context.Context, cs kubernetes.Interface, node string, want corev1.ConditionStatus) func() error {
	return func() error {
		got, err := nodeReady(ctx, cs, node)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("node %s Ready=%s", node, got)
		}
		return nil
	}
}

func gone(get func() error) func() error {
	return func() error {
		err := get()
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			return fmt.Errorf("still there")
		}
		return err
	}
}

// deleted is met once the object is gone or its deletion was requested
// (finalizers that only a controller-manager or kubelet would release
// keep it around in these test clusters).
func deleted(get func() (metav1.Object, error)) func() error {
	return func() error {
		o, err := get()
		if apierrors.IsNotFound(err) || (err == nil && o.GetDeletionTimestamp() != nil) {
			return nil
		}
		return fmt.Errorf("not deleted (%v)", err)
	}
}

// steps runs named steps of one scenario in order; after a failed step
// the scenario stops, for the later steps build on it.
func steps(t *testing.T) func(name string, f func(t *testing.T)) {
	return func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
}

// TestPodSync: a host and two members (Aggregate with GlobalCIDRs, and
// OneToOne), real control planes; the test plays the members' kubelets.
func TestPodSync(t *testing.T) {
	a := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-a"}, Spec: v1alpha1.ClusterObjectSpec{
		HostAPIEndpoint: "https://10.0.0.10:6443", GlobalCIDRs: map[string]string{"10.244.0.0/16": "100.64.0.0/16"}, PodCIDRs: []string{"10.244.0.0/16"},
		Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}}
	b := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-b"}, Spec: v1alpha1.ClusterObjectSpec{
		PodCIDRs: []string{"10.50.0.0/16"}, Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeOneToOne}}}
	w := newWorld(t, nil, a, b)
	ctx := context.Background()
	ma, mb, h := w.members["member-a"], w.members["member-b"], w.hostCS
	memberNodeObj(ctx, t, ma, "a1", "4")
	memberNodeObj(ctx, t, mb, "b1", "2")
	memberNodeObj(ctx, t, mb, "b2", "2")
	w.run(2 * time.Second)
	step := steps(t)
	zero := int64(0)
	var hp, mp *corev1.Pod // web-0 in the host and in member-a
	var hostToken string   // the host token web-0's copy was given

	step("virtual nodes, Cluster objects and leases", func(t *testing.T) {
		waitFor(t, "virtual nodes Ready", func() error {
			for _, n := range []string{"kosmos-member-a", "kosmos-member-b.b1", "kosmos-member-b.b2"} {
				if err := wantReady(ctx, h, n, corev1.ConditionTrue)(); err != nil {
					return err
				}
			}
			return nil
		})
		waitFor(t, "the Cluster objects Ready", func() error {
			for _, name := range []string{"member-a", "member-b"} {
				var cl v1alpha1.Cluster
				if err := w.host.Get(ctx, client.ObjectKey{Name: name}, &cl); err != nil {
					return err
				}
				if c := meta.FindStatusCondition(cl.Status.Conditions, "Ready"); c == nil || c.Status != metav1.ConditionTrue {
					return fmt.Errorf("cluster %s: Ready %+v", name, c)
				}
			}
			return nil
		})
		waitFor(t, "the virtual node's lease", func() error {
			_, err := h.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "kosmos-member-a", metav1.GetOptions{})
			return err
		})
	})

	step("pod and dependencies down", func(t *testing.T) {
		// The host side of a workload: namespace, account, config, secret, claim.
		_, err := h.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{tree.LabelTreeTokens: tree.TreeTokensEnabled}}}, metav1.CreateOptions{})
		must(t, err)
		_, err = h.CoreV1().ServiceAccounts("shop").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
		must(t, err)
		_, err = h.CoreV1().ConfigMaps("shop").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web-config"}, Data: map[string]string{"mode": "blue"}}, metav1.CreateOptions{})
		must(t, err)
		_, err = h.CoreV1().Secrets("shop").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"}, StringData: map[string]string{"password": "s3cret"}}, metav1.CreateOptions{})
		must(t, err)
		_, err = h.CoreV1().PersistentVolumeClaims("shop").Create(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "web-data"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}, metav1.CreateOptions{})
		must(t, err)

		p := hostPod("shop", "web-0", "kosmos-member-a")
		p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}, Key: "mode"}}}}
		p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "web-data"}}})
		hp, err = h.CoreV1().Pods("shop").Create(ctx, p, metav1.CreateOptions{})
		must(t, err)

		waitFor(t, "the pod in member-a", func() error {
			mp, err = ma.CoreV1().Pods("shop").Get(ctx, "web-0", metav1.GetOptions{})
			return err
		})
		if mp.Annotations[translate.AnnotationHostPodUID] != string(hp.UID) || mp.Labels[tree.LabelManagedBy] != tree.ManagedBy || mp.Spec.NodeName != "" {
			t.Errorf("member pod marks: %v %v node %q", mp.Labels, mp.Annotations, mp.Spec.NodeName)
		}
		if v := mp.Spec.Volumes[0]; v.Secret == nil || v.Secret.SecretName != translate.TokenSecretName(hp.UID) {
			t.Errorf("API token volume not replaced: %+v", v)
		}
		if env := mp.Spec.Containers[0].Env; len(env) != 3 || env[1].Value != "10.0.0.10" || env[2].Value != "6443" {
			t.Errorf("env: %+v", env)
		}
		// Its dependencies are there, equal to the host's.
		cm, err := ma.CoreV1().ConfigMaps("shop").Get(ctx, "web-config", metav1.GetOptions{})
		must(t, err)
		sec, err := ma.CoreV1().Secrets("shop").Get(ctx, "db", metav1.GetOptions{})
		must(t, err)
		if cm.Data["mode"] != "blue" || string(sec.Data["password"]) != "s3cret" {
			t.Errorf("copies: %v / (secret data differs)", cm.Data)
		}
		_, err = ma.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "web-data", metav1.GetOptions{})
		must(t, err)
		_, err = ma.CoreV1().ServiceAccounts("shop").Get(ctx, translate.MemberAccountName("web"), metav1.GetOptions{})
		must(t, err)
	})

	step("the token Secret authenticates as the host's account", func(t *testing.T) {
		// The token Secret makes the member pod the host's shop/web: the host
		// API server says so.
		tok, err := ma.CoreV1().Secrets("shop").Get(ctx, translate.TokenSecretName(hp.UID), metav1.GetOptions{})
		must(t, err)
		if string(tok.Data["namespace"]) != "shop" || string(tok.Data["ca.crt"]) != string(w.env.Cluster("host").Config.CAData) {
			t.Error("token Secret: wrong namespace or CA")
		}
		asPod := &rest.Config{Host: w.env.Cluster("host").Config.Host, BearerToken: string(tok.Data["token"]),
			TLSClientConfig: rest.TLSClientConfig{CAData: tok.Data["ca.crt"]}}
		who, err := kubernetes.NewForConfigOrDie(asPod).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		must(t, err)
		if got := who.Status.UserInfo.Username; got != "system:serviceaccount:shop:web" {
			t.Errorf("the synced token authenticates to the host as %q", got)
		}
		// It is bound to the host pod (so it dies with it; see below).
		if got := who.Status.UserInfo.Extra["authentication.kubernetes.io/pod-uid"]; len(got) != 1 || got[0] != string(hp.UID) {
			t.Errorf("the synced token is not bound to the host pod: pod-uid %v", got)
		}
		hostToken = string(tok.Data["token"])
	})

	step("the pod's token is renewed while the pod lives", func(t *testing.T) {
		// A token Secret near its expiry (forged here) gets a fresh token,
		// bound to the same pod.
		name := translate.TokenSecretName(hp.UID)
		tok, err := ma.CoreV1().Secrets("shop").Get(ctx, name, metav1.GetOptions{})
		must(t, err)
		tok.Annotations[tree.AnnotationTokenExpires] = time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
		_, err = ma.CoreV1().Secrets("shop").Update(ctx, tok, metav1.UpdateOptions{})
		must(t, err)
		waitFor(t, "a renewed token", func() error {
			got, err := ma.CoreV1().Secrets("shop").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if exp, _ := time.Parse(time.RFC3339, got.Annotations[tree.AnnotationTokenExpires]); time.Until(exp) < 30*time.Minute || string(got.Data["token"]) == hostToken {
				return fmt.Errorf("not renewed: expires %s", got.Annotations[tree.AnnotationTokenExpires])
			}
			hostToken = string(got.Data["token"])
			return nil
		})
		who, err := h.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: hostToken}}, metav1.CreateOptions{})
		must(t, err)
		if got := who.Status.User.Extra["authentication.kubernetes.io/pod-uid"]; !who.Status.Authenticated || len(got) != 1 || got[0] != string(hp.UID) {
			t.Errorf("the renewed token: authenticated %v, bound to %v", who.Status.Authenticated, got)
		}
	})

	step("the token Secrets' prefix is reserved", func(t *testing.T) {
		// A host Secret named like the token Secret never overwrites it, and
		// a pod that names one is refused.
		name := translate.TokenSecretName(hp.UID)
		before, err := ma.CoreV1().Secrets("shop").Get(ctx, name, metav1.GetOptions{})
		must(t, err)
		_, err = h.CoreV1().Secrets("shop").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name},
			StringData: map[string]string{"token": "forged", "ca.crt": "forged"}}, metav1.CreateOptions{})
		must(t, err)
		forged := hostPod("shop", "forger", "kosmos-member-a")
		forged.Spec.Volumes = append(forged.Spec.Volumes, corev1.Volume{Name: "f", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name}}})
		_, err = h.CoreV1().Pods("shop").Create(ctx, forged, metav1.CreateOptions{})
		must(t, err)
		waitFor(t, "a refusal event on the pod that names a reserved Secret", func() error {
			evs, err := h.CoreV1().Events("shop").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=forger"})
			if err != nil || len(evs.Items) == 0 || evs.Items[0].Reason != tree.ReasonBadTranslation || !strings.Contains(evs.Items[0].Message, "reserved") {
				return fmt.Errorf("no refusal event (%v)", err)
			}
			return nil
		})
		// The host Secret changes again (its copy would be queued now).
		sec, err := h.CoreV1().Secrets("shop").Get(ctx, name, metav1.GetOptions{})
		must(t, err)
		sec.Data["token"] = []byte("forged again")
		_, err = h.CoreV1().Secrets("shop").Update(ctx, sec, metav1.UpdateOptions{})
		must(t, err)
		w.awaitPasses(t, 3) // the copy's worker and the passes had their chance
		after, err := ma.CoreV1().Secrets("shop").Get(ctx, name, metav1.GetOptions{})
		must(t, err)
		if string(after.Data["token"]) != string(before.Data["token"]) || string(after.Data["ca.crt"]) != string(before.Data["ca.crt"]) {
			t.Error("a host Secret under the reserved prefix overwrote the token Secret")
		}
		if _, err := ma.CoreV1().Pods("shop").Get(ctx, "forger", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the pod that names a reserved Secret reached the member (%v)", err)
		}
		must(t, h.CoreV1().Pods("shop").Delete(ctx, "forger", metav1.DeleteOptions{GracePeriodSeconds: &zero}))
		must(t, h.CoreV1().Secrets("shop").Delete(ctx, name, metav1.DeleteOptions{}))
	})

	step("status up at the global IP", func(t *testing.T) {
		// The member runs it; the host shows Running at the global IP.
		must(t, runPod(ctx, ma, mp, "a1", "10.244.1.5"))
		waitFor(t, "Running on the host pod", func() error {
			var err error
			hp, err = h.CoreV1().Pods("shop").Get(ctx, "web-0", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if hp.Status.Phase != corev1.PodRunning || hp.Status.PodIP != "100.64.1.5" || hp.Status.HostIP != "192.168.2.11" ||
				len(hp.Status.ContainerStatuses) != 1 || !hp.Status.ContainerStatuses[0].Ready || hp.Status.StartTime == nil {
				return fmt.Errorf("host pod status %+v", hp.Status)
			}
			return nil
		})
	})

	step("member-scheduling may not reach the member's control planes", func(t *testing.T) {
		p := hostPod("shop", "climber", "kosmos-member-a")
		p.Annotations = map[string]string{translate.AnnotationMemberScheduling: `{"nodeSelector":{"node-role.kubernetes.io/control-plane":""},` +
			`"tolerations":[{"key":"node-role.kubernetes.io/control-plane","operator":"Exists","effect":"NoSchedule"}]}`}
		_, err := h.CoreV1().Pods("shop").Create(ctx, p, metav1.CreateOptions{})
		must(t, err)
		waitFor(t, "a refusal event", func() error {
			evs, err := h.CoreV1().Events("shop").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=climber,reason=" + tree.ReasonBadTranslation})
			if err != nil || len(evs.Items) == 0 || !strings.Contains(evs.Items[0].Message, "control-plane") {
				return fmt.Errorf("no refusal event (%v)", err)
			}
			return nil
		})
		if _, err := ma.CoreV1().Pods("shop").Get(ctx, "climber", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the pod reached the member (%v)", err)
		}
		must(t, h.CoreV1().Pods("shop").Delete(ctx, "climber", metav1.DeleteOptions{GracePeriodSeconds: &zero}))
	})

	step("a pod IP outside the member's pod CIDRs never reaches the host", func(t *testing.T) {
		// A compromised member claims the host's API Service address for a
		// pod: the host pod runs, without that address, and a warning says so.
		_, err := h.CoreV1().Pods("shop").Create(ctx, hostPod("shop", "liar", "kosmos-member-a"), metav1.CreateOptions{})
		must(t, err)
		var lp *corev1.Pod
		waitFor(t, "liar in member-a", func() error { lp, err = ma.CoreV1().Pods("shop").Get(ctx, "liar", metav1.GetOptions{}); return err })
		must(t, runPod(ctx, ma, lp, "a1", "10.96.0.1"))
		waitFor(t, "the refusal event", func() error {
			evs, err := h.CoreV1().Events("shop").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=liar,reason=" + tree.ReasonAddressRefused})
			if err != nil || len(evs.Items) == 0 || !strings.Contains(evs.Items[0].Message, "10.96.0.1") {
				return fmt.Errorf("no %s event naming the address (%v)", tree.ReasonAddressRefused, err)
			}
			return nil
		})
		waitFor(t, "liar Running in the host", func() error {
			got, err := h.CoreV1().Pods("shop").Get(ctx, "liar", metav1.GetOptions{})
			if err == nil && got.Status.Phase != corev1.PodRunning {
				return fmt.Errorf("phase %s", got.Status.Phase)
			}
			return err
		})
		if got, err := h.CoreV1().Pods("shop").Get(ctx, "liar", metav1.GetOptions{}); err != nil || got.Status.PodIP != "" || len(got.Status.PodIPs) != 0 {
			t.Errorf("the host pod shows the member's forged address (%v)", err)
		}
		must(t, h.CoreV1().Pods("shop").Delete(ctx, "liar", metav1.DeleteOptions{GracePeriodSeconds: &zero}))
		waitFor(t, "liar's copy to terminate", deleted(func() (metav1.Object, error) { return ma.CoreV1().Pods("shop").Get(ctx, "liar", metav1.GetOptions{}) }))
		// The member's kubelet is done with it (its account is then unused).
		if err := ma.CoreV1().Pods("shop").Delete(ctx, "liar", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	})

	step("a second Cluster object for the same member leaves its pods alone", func(t *testing.T) {
		// A copy-paste in the topology, say: the alias runs its own sync
		// there and never takes member-a's pods for orphans.
		alias := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-a-alias"}, Spec: v1alpha1.ClusterObjectSpec{
			Kubeconfig: v1alpha1.SecretKeyRef{Name: "kubeconfig-member-a", Namespace: "kosmos-system"}, Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}}
		must(t, w.host.Create(ctx, alias))
		waitFor(t, "the alias's virtual node Ready (its sync has swept the member)", wantReady(ctx, h, "kosmos-member-a-alias", corev1.ConditionTrue))
		if p, err := ma.CoreV1().Pods("shop").Get(ctx, "web-0", metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil || p.UID != mp.UID {
			t.Fatalf("another Cluster's sync touched member-a's pod: %v", err)
		}
		must(t, w.host.Delete(ctx, alias))
	})

	step("ConfigMap, Secret and image changes follow", func(t *testing.T) {
		cmh, err := h.CoreV1().ConfigMaps("shop").Get(ctx, "web-config", metav1.GetOptions{})
		must(t, err)
		cmh.Data["mode"] = "green"
		_, err = h.CoreV1().ConfigMaps("shop").Update(ctx, cmh, metav1.UpdateOptions{})
		must(t, err)
		sech, err := h.CoreV1().Secrets("shop").Get(ctx, "db", metav1.GetOptions{})
		must(t, err)
		sech.Data["password"] = []byte("rotated")
		_, err = h.CoreV1().Secrets("shop").Update(ctx, sech, metav1.UpdateOptions{})
		must(t, err)
		hp.Spec.Containers[0].Image = "shop/web:1.1"
		_, err = h.CoreV1().Pods("shop").Update(ctx, hp, metav1.UpdateOptions{})
		must(t, err)
		waitFor(t, "the member's copies and image to follow", func() error {
			cm, err := ma.CoreV1().ConfigMaps("shop").Get(ctx, "web-config", metav1.GetOptions{})
			if err != nil || cm.Data["mode"] != "green" {
				return fmt.Errorf("configmap %v %v", cm.Data, err)
			}
			sec, err := ma.CoreV1().Secrets("shop").Get(ctx, "db", metav1.GetOptions{})
			if err != nil || string(sec.Data["password"]) != "rotated" {
				return fmt.Errorf("secret copy not rotated (%v)", err)
			}
			mp, err := ma.CoreV1().Pods("shop").Get(ctx, "web-0", metav1.GetOptions{})
			if err != nil || mp.Spec.Containers[0].Image != "shop/web:1.1" {
				return fmt.Errorf("image not updated (%v)", err)
			}
			return nil
		})
	})

	step("host pod deleted with its grace period", func(t *testing.T) {
		// The member pod is deleted with the same grace, the host pod waits
		// for it like for a kubelet.
		grace := int64(30)
		must(t, h.CoreV1().Pods("shop").Delete(ctx, "web-0", metav1.DeleteOptions{GracePeriodSeconds: &grace}))
		waitFor(t, "the member pod to terminate with the host's grace", func() error {
			mp, err := ma.CoreV1().Pods("shop").Get(ctx, "web-0", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if mp.DeletionTimestamp == nil || mp.DeletionGracePeriodSeconds == nil || *mp.DeletionGracePeriodSeconds != 30 {
				return fmt.Errorf("member pod not terminating with grace 30")
			}
			return nil
		})
		if _, err := h.CoreV1().Pods("shop").Get(ctx, "web-0", metav1.GetOptions{}); err != nil {
			t.Fatalf("the host pod went before the member pod stopped: %v", err)
		}
		must(t, ma.CoreV1().Pods("shop").Delete(ctx, "web-0", metav1.DeleteOptions{GracePeriodSeconds: &zero})) // the member's kubelet is done
		waitFor(t, "the host pod to go", gone(func() error { _, err := h.CoreV1().Pods("shop").Get(ctx, "web-0", metav1.GetOptions{}); return err }))
	})

	step("the pod's token dies with the host pod", func(t *testing.T) {
		// Bound to web-0, the token the member held no longer authenticates,
		// though it has most of its hour left (once the API server's 10 s
		// cache of good tokens lets go of it).
		waitFor(t, "the token of the deleted host pod to stop authenticating", func() error {
			rev, err := h.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: hostToken}}, metav1.CreateOptions{})
			if err == nil && rev.Status.Authenticated {
				return fmt.Errorf("it still authenticates as %q", rev.Status.User.Username)
			}
			return err
		})
	})

	step("unused copies collected, the claim follows its host claim", func(t *testing.T) {
		for what, get := range map[string]func() error{
			"ConfigMap web-config": func() error {
				_, err := ma.CoreV1().ConfigMaps("shop").Get(ctx, "web-config", metav1.GetOptions{})
				return err
			},
			"Secret db": func() error { _, err := ma.CoreV1().Secrets("shop").Get(ctx, "db", metav1.GetOptions{}); return err },
			"the token Secret": func() error {
				_, err := ma.CoreV1().Secrets("shop").Get(ctx, translate.TokenSecretName(hp.UID), metav1.GetOptions{})
				return err
			},
			"the tree's ServiceAccount": func() error {
				_, err := ma.CoreV1().ServiceAccounts("shop").Get(ctx, translate.MemberAccountName("web"), metav1.GetOptions{})
				return err
			},
		} {
			waitFor(t, "the unused copy "+what+" to be collected", gone(get))
		}
		if _, err := ma.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "web-data", metav1.GetOptions{}); err != nil {
			t.Errorf("the member's claim went while the host claim exists: %v", err)
		}
		must(t, h.CoreV1().PersistentVolumeClaims("shop").Delete(ctx, "web-data", metav1.DeleteOptions{}))
		// Both claims carry pvc-protection finalizers (no controller-manager
		// here releases them), so deleted means: deletion requested.
		waitFor(t, "the member's claim to follow the host claim", deleted(func() (metav1.Object, error) {
			return ma.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "web-data", metav1.GetOptions{})
		}))
	})

	step("OneToOne: on the mirrored node; a vanished copy fails the host pod", func(t *testing.T) {
		_, err := h.CoreV1().Pods("shop").Create(ctx, hostPod("shop", "batch-0", "kosmos-member-b.b2"), metav1.CreateOptions{})
		must(t, err)
		var bp *corev1.Pod
		waitFor(t, "the pod on member node b2", func() error {
			bp, err = mb.CoreV1().Pods("shop").Get(ctx, "batch-0", metav1.GetOptions{})
			if err == nil && bp.Spec.NodeName != "b2" {
				return fmt.Errorf("on node %q", bp.Spec.NodeName)
			}
			return err
		})
		must(t, runPod(ctx, mb, bp, "b2", "10.50.0.7"))
		waitFor(t, "batch-0 Running", func() error {
			hp, err := h.CoreV1().Pods("shop").Get(ctx, "batch-0", metav1.GetOptions{})
			if err == nil && (hp.Status.Phase != corev1.PodRunning || hp.Status.PodIP != "10.50.0.7") {
				return fmt.Errorf("status %s %s", hp.Status.Phase, hp.Status.PodIP)
			}
			return err
		})
		// The member pod vanishes behind the tree's back: the host pod fails.
		must(t, mb.CoreV1().Pods("shop").Delete(ctx, "batch-0", metav1.DeleteOptions{GracePeriodSeconds: &zero}))
		waitFor(t, "batch-0 Failed", func() error {
			hp, err := h.CoreV1().Pods("shop").Get(ctx, "batch-0", metav1.GetOptions{})
			if err == nil && (hp.Status.Phase != corev1.PodFailed || hp.Status.Reason != tree.ReasonMemberPodGone) {
				return fmt.Errorf("status %s %s", hp.Status.Phase, hp.Status.Reason)
			}
			return err
		})
	})

	step("OneToOne: a pod bound to a tainted member node's mirror is refused", func(t *testing.T) {
		// b2 becomes a control plane: a host pod bound to its virtual node
		// (nodeName set by hand, past every scheduler) does not reach it.
		n, err := mb.CoreV1().Nodes().Get(ctx, "b2", metav1.GetOptions{})
		must(t, err)
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule})
		_, err = mb.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		must(t, err)
		w.awaitPasses(t, 3) // passes read the member's node cache, which has the taint by now
		_, err = h.CoreV1().Pods("shop").Create(ctx, hostPod("shop", "intruder", "kosmos-member-b.b2"), metav1.CreateOptions{})
		must(t, err)
		waitFor(t, "a refusal event", func() error {
			evs, err := h.CoreV1().Events("shop").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=intruder,reason=" + tree.ReasonBadTranslation})
			if err != nil || len(evs.Items) == 0 || !strings.Contains(evs.Items[0].Message, "node-role.kubernetes.io/control-plane") {
				return fmt.Errorf("no refusal event (%v)", err)
			}
			return nil
		})
		if _, err := mb.CoreV1().Pods("shop").Get(ctx, "intruder", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the pod was pinned to the member's control plane (%v)", err)
		}
		must(t, h.CoreV1().Pods("shop").Delete(ctx, "intruder", metav1.DeleteOptions{GracePeriodSeconds: &zero}))
	})

	step("a member's own ServiceAccount never lends its token to a host pod", func(t *testing.T) {
		// member-b (no host endpoint) has its own shop/web with a token
		// Secret. The copy of a host pod of account web runs under the
		// tree's account, its API volume without a token, and a pod that
		// mounts the member's token Secret (by a host token Secret of the
		// same name) is refused.
		_, err := mb.CoreV1().ServiceAccounts("shop").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) { // the tree made it (before accounts of its own): the member takes it over
			own, gerr := mb.CoreV1().ServiceAccounts("shop").Get(ctx, "web", metav1.GetOptions{})
			must(t, gerr)
			own.Labels = nil
			_, err = mb.CoreV1().ServiceAccounts("shop").Update(ctx, own, metav1.UpdateOptions{})
		}
		must(t, err)
		_, err = mb.CoreV1().Secrets("shop").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-token",
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "web"}}, Type: corev1.SecretTypeServiceAccountToken}, metav1.CreateOptions{})
		must(t, err)
		_, err = h.CoreV1().Pods("shop").Create(ctx, hostPod("shop", "borrower", "kosmos-member-b.b1"), metav1.CreateOptions{})
		must(t, err)
		var cp *corev1.Pod
		waitFor(t, "borrower in member-b", func() error { cp, err = mb.CoreV1().Pods("shop").Get(ctx, "borrower", metav1.GetOptions{}); return err })
		if cp.Spec.ServiceAccountName == "web" || cp.Spec.AutomountServiceAccountToken == nil || *cp.Spec.AutomountServiceAccountToken {
			t.Errorf("the copy runs under account %q (automount %v)", cp.Spec.ServiceAccountName, cp.Spec.AutomountServiceAccountToken)
		}
		sa, err := mb.CoreV1().ServiceAccounts("shop").Get(ctx, cp.Spec.ServiceAccountName, metav1.GetOptions{})
		if err != nil || sa.Labels[tree.LabelManagedBy] != tree.ManagedBy || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("the copy's account is not the tree's own: %v", err)
		}
		for _, v := range cp.Spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == "web-token" {
				t.Errorf("volume %s mounts the member's token Secret", v.Name)
			}
			if v.Projected != nil {
				for _, src := range v.Projected.Sources {
					if src.ServiceAccountToken != nil {
						t.Errorf("volume %s projects a member token", v.Name)
					}
				}
			}
		}
		_, err = h.CoreV1().Secrets("shop").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-token",
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "web"}}, Type: corev1.SecretTypeServiceAccountToken}, metav1.CreateOptions{})
		must(t, err)
		legacy := hostPod("shop", "legacy", "kosmos-member-b.b1")
		legacy.Spec.Volumes = append(legacy.Spec.Volumes, corev1.Volume{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "web-token"}}})
		_, err = h.CoreV1().Pods("shop").Create(ctx, legacy, metav1.CreateOptions{})
		must(t, err)
		waitFor(t, "a refusal event on the pod that mounts the member's token Secret", func() error {
			evs, err := h.CoreV1().Events("shop").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=legacy"})
			if err != nil || len(evs.Items) == 0 || !strings.Contains(evs.Items[0].Message, "did not create") {
				return fmt.Errorf("no refusal event (%v)", err)
			}
			return nil
		})
		if _, err := mb.CoreV1().Pods("shop").Get(ctx, "legacy", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the pod that mounts the member's token Secret reached the member (%v)", err)
		}
		for _, n := range []string{"borrower", "legacy"} {
			must(t, h.CoreV1().Pods("shop").Delete(ctx, n, metav1.DeleteOptions{GracePeriodSeconds: &zero}))
		}
	})

	step("a member pod of the same name the tree did not create is left alone", func(t *testing.T) {
		_, err := ma.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
		must(t, err)
		_, err = ma.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "clash", Namespace: "shop"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "own", Image: "theirs:1"}}}}, metav1.CreateOptions{})
		must(t, err)
		_, err = h.CoreV1().Pods("shop").Create(ctx, hostPod("shop", "clash", "kosmos-member-a"), metav1.CreateOptions{})
		must(t, err)
		waitFor(t, "a warning event on the clashing host pod", func() error {
			evs, err := h.CoreV1().Events("shop").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=clash"})
			if err != nil || len(evs.Items) == 0 || evs.Items[0].Reason != tree.ReasonNameTaken {
				return fmt.Errorf("no %s event (%v)", tree.ReasonNameTaken, err)
			}
			return nil
		})
		if own, err := ma.CoreV1().Pods("shop").Get(ctx, "clash", metav1.GetOptions{}); err != nil || own.Spec.Containers[0].Image != "theirs:1" || own.Labels[tree.LabelManagedBy] != "" {
			t.Errorf("the member's own pod was touched: %v", err)
		}
	})

	step("a pod that names a member's own Secret is refused", func(t *testing.T) {
		// Kosmos did not copy it: a host pod never reads a member's own data.
		_, err := ma.CoreV1().Secrets("shop").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "member-only"},
			StringData: map[string]string{"key": "the member's"}}, metav1.CreateOptions{})
		must(t, err)
		nosy := hostPod("shop", "nosy", "kosmos-member-a")
		nosy.Spec.Volumes = append(nosy.Spec.Volumes, corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "member-only"}}})
		_, err = h.CoreV1().Pods("shop").Create(ctx, nosy, metav1.CreateOptions{})
		must(t, err)
		waitFor(t, "a warning event on the pod that names a member's Secret", func() error {
			evs, err := h.CoreV1().Events("shop").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=nosy"})
			if err != nil || len(evs.Items) == 0 || !strings.Contains(evs.Items[0].Message, "did not create") {
				return fmt.Errorf("no refusal event (%v)", err)
			}
			return nil
		})
		if _, err := ma.CoreV1().Pods("shop").Get(ctx, "nosy", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the pod reached the member and could read its Secret (%v)", err)
		}
	})

	step("restart: the orphan deleted, the new pod created once", func(t *testing.T) {
		// The controller stops; meanwhile one host pod is deleted and one
		// created. The new controller deletes the orphan, creates the new
		// pod once, and duplicates nothing.
		_, err := h.CoreV1().Pods("shop").Create(ctx, hostPod("shop", "keep-0", "kosmos-member-b.b1"), metav1.CreateOptions{})
		must(t, err)
		waitFor(t, "keep-0 in member-b", func() error { _, err := mb.CoreV1().Pods("shop").Get(ctx, "keep-0", metav1.GetOptions{}); return err })
		_, err = h.CoreV1().Pods("shop").Create(ctx, hostPod("shop", "orphan-0", "kosmos-member-b.b1"), metav1.CreateOptions{})
		must(t, err)
		waitFor(t, "orphan-0 in member-b", func() error { _, err := mb.CoreV1().Pods("shop").Get(ctx, "orphan-0", metav1.GetOptions{}); return err })
		w.stop()
		must(t, h.CoreV1().Pods("shop").Delete(ctx, "orphan-0", metav1.DeleteOptions{GracePeriodSeconds: &zero}))
		_, err = h.CoreV1().Pods("shop").Create(ctx, hostPod("shop", "late-0", "kosmos-member-b.b1"), metav1.CreateOptions{})
		must(t, err)
		keep, err := mb.CoreV1().Pods("shop").Get(ctx, "keep-0", metav1.GetOptions{})
		must(t, err)
		w.run(2 * time.Second)
		waitFor(t, "the orphan deleted and late-0 created", func() error {
			if _, err := mb.CoreV1().Pods("shop").Get(ctx, "late-0", metav1.GetOptions{}); err != nil {
				return err
			}
			// Bound to b1, it is deleted gracefully: the member's kubelet would finish it.
			return deleted(func() (metav1.Object, error) {
				return mb.CoreV1().Pods("shop").Get(ctx, "orphan-0", metav1.GetOptions{})
			})()
		})
		if again, err := mb.CoreV1().Pods("shop").Get(ctx, "keep-0", metav1.GetOptions{}); err != nil || again.UID != keep.UID {
			t.Errorf("keep-0 was recreated over a restart: %v", err)
		}
	})

	step("outage: nodes Unknown, back Ready, deletions catch up", func(t *testing.T) {
		// member-b's API server stops answering; after the grace period its
		// virtual nodes go NotReady (Unknown); it comes back, so do they. A
		// host pod deleted during the outage is deleted in member-b once it
		// is back.
		must(t, w.env.Cluster("member-b").Pause())
		waitFor(t, "member-b's nodes NotReady", wantReady(ctx, h, "kosmos-member-b.b1", corev1.ConditionUnknown))
		if st, _ := nodeReady(ctx, h, "kosmos-member-a"); st != corev1.ConditionTrue {
			t.Errorf("member-a's node went %s during member-b's outage", st)
		}
		must(t, h.CoreV1().Pods("shop").Delete(ctx, "keep-0", metav1.DeleteOptions{GracePeriodSeconds: &zero}))
		must(t, w.env.Cluster("member-b").Resume())
		waitFor(t, "member-b's nodes Ready again", wantReady(ctx, h, "kosmos-member-b.b1", corev1.ConditionTrue))
		waitFor(t, "keep-0 deleted in member-b after the outage", deleted(func() (metav1.Object, error) {
			return mb.CoreV1().Pods("shop").Get(ctx, "keep-0", metav1.GetOptions{})
		}))
	})
}

// TestStorageBothWays: a pod's claim is created in the member; once the
// member binds it (the test plays the member's provisioner), its volume is
// reflected in the host, pinned to the virtual node, and the host claim is
// bound to it; deleting the host claim removes the reflection.
func TestStorageBothWays(t *testing.T) {
	w := newWorld(t, nil, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-a"}, Spec: v1alpha1.ClusterObjectSpec{Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}})
	ctx := context.Background()
	h, ma := w.hostCS, w.members["member-a"]
	memberNodeObj(ctx, t, ma, "a1", "4")
	w.run(10 * time.Second)
	step := steps(t)
	var hc *corev1.PersistentVolumeClaim // in the host
	var mc *corev1.PersistentVolumeClaim // in the member

	step("the pod's claim in the member", func(t *testing.T) {
		_, err := h.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{tree.LabelTreeTokens: tree.TreeTokensEnabled}}}, metav1.CreateOptions{})
		must(t, err)
		_, err = h.CoreV1().ServiceAccounts("shop").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
		must(t, err)
		hc, err = h.CoreV1().PersistentVolumeClaims("shop").Create(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}, metav1.CreateOptions{})
		must(t, err)
		waitFor(t, "the virtual node", wantReady(ctx, h, "kosmos-member-a", corev1.ConditionTrue))
		p := hostPod("shop", "db-0", "kosmos-member-a")
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}})
		_, err = h.CoreV1().Pods("shop").Create(ctx, p, metav1.CreateOptions{})
		must(t, err)
		waitFor(t, "the claim in the member", func() error {
			mc, err = ma.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
			return err
		})
	})

	step("bound in the member: the volume reflected, the host claim bound", func(t *testing.T) {
		// The member's provisioner: a volume on a1, bound to the member's claim.
		_, err := ma.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-a1-1"}, Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			ClaimRef:                      &corev1.ObjectReference{Namespace: "shop", Name: "data", UID: mc.UID},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/member/pvc-a1-1"}},
		}}, metav1.CreateOptions{})
		must(t, err)
		mc.Spec.VolumeName = "pvc-a1-1"
		mc, err = ma.CoreV1().PersistentVolumeClaims("shop").Update(ctx, mc, metav1.UpdateOptions{})
		must(t, err)
		mc.Status.Phase = corev1.ClaimBound
		_, err = ma.CoreV1().PersistentVolumeClaims("shop").UpdateStatus(ctx, mc, metav1.UpdateOptions{})
		must(t, err)

		waitFor(t, "the host claim bound to the reflected volume", func() error {
			c, err := h.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
			if err == nil && (c.Spec.VolumeName != "kosmos-member-a.pvc-a1-1" || c.Status.Phase != corev1.ClaimBound || c.Status.Capacity.Storage().String() != "2Gi") {
				return fmt.Errorf("host claim: volume %q phase %s capacity %v", c.Spec.VolumeName, c.Status.Phase, c.Status.Capacity)
			}
			return err
		})
		pv, err := h.CoreV1().PersistentVolumes().Get(ctx, "kosmos-member-a.pvc-a1-1", metav1.GetOptions{})
		must(t, err)
		if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != hc.UID || pv.Status.Phase != corev1.VolumeBound ||
			pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain ||
			pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values[0] != "kosmos-member-a" {
			t.Errorf("host volume: %+v / %+v", pv.Spec, pv.Status)
		}
	})

	step("the reflection goes with the host claim", func(t *testing.T) {
		must(t, h.CoreV1().PersistentVolumeClaims("shop").Delete(ctx, "data", metav1.DeleteOptions{}))
		waitFor(t, "the reflection to go with the host claim", deleted(func() (metav1.Object, error) {
			return h.CoreV1().PersistentVolumes().Get(ctx, "kosmos-member-a.pvc-a1-1", metav1.GetOptions{})
		}))
		if _, err := ma.CoreV1().PersistentVolumes().Get(ctx, "pvc-a1-1", metav1.GetOptions{}); err != nil {
			t.Errorf("the member's own volume was touched: %v", err)
		}
	})
}
