package reconciler_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/kubeconfig"
	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/reconciler/apply"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestObjectSource runs the controller the way it runs in the host: the
// topology is a KosmosTopology object (as Argo CD or Flux apply it), members
// are reached through kubeconfig Secrets, and the outcome is written to the
// object's status (kstatus) and events.
func TestObjectSource(t *testing.T) {
	names := []string{"host", "member-a", "member-b", "member-c"}
	env := testenv.StartT(t, testenv.Options{Names: names, CRDDirs: []string{filepath.Join("..", "kustomize", "base", "crds")}})
	clients := env.ClientsT(t)
	host := clients["host"]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := testenv.ExampleNodes(ctx, clients); err != nil {
		t.Fatal(err)
	}
	const ns = "kosmos-system"
	if err := host.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range names[1:] {
		kc, err := env.KubeconfigFor(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := host.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kubeconfig-" + n}, Data: map[string][]byte{"kubeconfig": kc}}); err != nil {
			t.Fatal(err)
		}
	}
	// member-c's Secret holds a kubeconfig that would run a program.
	if err := host.Update(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kubeconfig-member-c"}, Data: map[string][]byte{"kubeconfig": []byte(execKubeconfig)}}); err != nil {
		t.Fatal(err)
	}

	topo, err := schema.LoadFile(filepath.Join("..", "topology.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	topo.Namespace = ns
	topo.Spec.Clusters[0].Kubeconfig.SecretRef = nil // the host: the controller's own credentials
	if err := host.Create(ctx, topo); err != nil {
		t.Fatal(err)
	}

	rec, stopRec, err := reconciler.NewEventRecorder(env.Cluster("host").Config, "kosmos-reconciler")
	if err != nil {
		t.Fatal(err)
	}
	defer stopRec()
	wc, err := client.NewWithWatch(env.Cluster("host").Config, client.Options{Scheme: host.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	var passes atomic.Int64
	ctl := &reconciler.Controller{
		Source: &reconciler.ObjectSource{Client: wc, Namespace: ns, Name: topo.Name, Events: rec},
		Connect: func(tp *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
			return reconciler.ConnectSecrets(ctx, env.Cluster("host").Config, tp, ns, kubeconfig.Options{})
		},
		Resync:         time.Second,
		ClusterTimeout: 3 * time.Second,
		Prune:          true,
		Log:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4})),
		OnPass:         func(reconciler.Report, error) { passes.Add(1) },
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = ctl.Run(ctx) }()
	defer func() { cancel(); <-done }()

	get := func() *v1alpha1.KosmosTopology {
		var o v1alpha1.KosmosTopology
		if err := host.Get(ctx, client.ObjectKeyFromObject(topo), &o); err != nil {
			t.Fatal(err)
		}
		return &o
	}
	cond := func(o *v1alpha1.KosmosTopology, typ string) *metav1.Condition {
		return meta.FindStatusCondition(o.Status.Conditions, typ)
	}
	// kstat is what kubectl wait / Flux health checks make of the object.
	kstat := func(o *v1alpha1.KosmosTopology) status.Status {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		r, err := status.Compute(&unstructured.Unstructured{Object: u})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	clusterStatus := func(o *v1alpha1.KosmosTopology, name string) v1alpha1.ClusterStatus {
		i := slices.IndexFunc(o.Status.Clusters, func(c v1alpha1.ClusterStatus) bool { return c.Name == name })
		if i < 0 {
			return v1alpha1.ClusterStatus{}
		}
		return o.Status.Clusters[i]
	}

	// member-c is refused (exec kubeconfig); the others are reconciled.
	var o *v1alpha1.KosmosTopology
	poll.Until(t, 60*time.Second, "a status naming member-c", func() bool {
		o = get()
		return o.Status.ObservedGeneration == o.Generation && len(o.Status.Clusters) == 4
	})
	if c := clusterStatus(o, "member-c"); c.Reachable || !strings.Contains(c.Message, "exec plugin") {
		t.Errorf("member-c: %+v, want unreachable for its exec kubeconfig", c)
	}
	if c := cond(o, reconciler.CondStalled); c == nil || c.Reason != reconciler.ReasonClustersFailing || !strings.Contains(c.Message, "member-c") {
		t.Errorf("Stalled: %+v", c)
	}
	if s := kstat(o); s != status.FailedStatus {
		t.Errorf("kstatus = %s, want Failed", s)
	}
	for _, n := range []string{"host", "member-a", "member-b"} {
		if c := clusterStatus(o, n); !c.Reachable || c.Objects == 0 {
			t.Errorf("cluster %s: %+v", n, c)
		}
	}
	assertNoCredential(t, o)

	// The Secret fixed: Ready, and kstatus Current, without any edit of the
	// topology (failed clusters are reconnected on resync).
	kc, err := env.KubeconfigFor("member-c")
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Update(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kubeconfig-member-c"}, Data: map[string][]byte{"kubeconfig": kc}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "Ready", func() bool {
		o = get()
		c := cond(o, reconciler.CondReady)
		return c != nil && c.Status == metav1.ConditionTrue
	})
	if s := kstat(o); s != status.CurrentStatus {
		t.Errorf("kstatus = %s, want Current", s)
	}
	if cond(o, reconciler.CondStalled) != nil || cond(o, reconciler.CondReconciling) != nil {
		t.Errorf("Stalled/Reconciling present on a ready topology: %+v", o.Status.Conditions)
	}
	var before v1alpha1.NodeConfigList
	if err := clients["member-b"].List(ctx, &before); err != nil || len(before.Items) == 0 {
		t.Fatalf("member-b NodeConfigs: %d, %v", len(before.Items), err)
	}

	// An edit the API server accepts but Kosmos refuses (member-b's pods
	// mapped onto member-a's GlobalCIDR): Stalled with the problem, an
	// event, nothing changes.
	o = get()
	o.Spec.Clusters[2].Network.GlobalCIDRs["10.244.0.0/16"] = "100.64.0.0/16"
	if err := host.Update(ctx, o); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "the rejection in status", func() bool {
		o = get()
		c := cond(o, reconciler.CondStalled)
		return o.Status.ObservedGeneration == o.Generation && c != nil && c.Reason == reconciler.ReasonInvalid
	})
	msg := cond(o, reconciler.CondStalled).Message
	if !strings.Contains(msg, "kosmostopology/kosmos-system/example: spec.clusters[") || !strings.Contains(msg, "overlap") {
		t.Errorf("rejection message does not name the object and field:\n%s", msg)
	}
	if s := kstat(o); s != status.FailedStatus {
		t.Errorf("kstatus of a rejected topology = %s, want Failed", s)
	}
	poll.Until(t, 10*time.Second, "an InvalidTopology event", func() bool {
		var evs corev1.EventList
		if host.List(ctx, &evs, client.InNamespace(ns)) != nil {
			return false
		}
		return slices.ContainsFunc(evs.Items, func(e corev1.Event) bool {
			return e.Reason == reconciler.ReasonInvalid && e.InvolvedObject.Name == topo.Name && e.Type == corev1.EventTypeWarning
		})
	})
	seen := passes.Load()
	poll.Until(t, 10*time.Second, "two passes under the rejected generation", func() bool { return passes.Load() >= seen+2 })
	var after v1alpha1.NodeConfigList
	if err := clients["member-b"].List(ctx, &after); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(nodeConfigVersions(before)) != fmt.Sprint(nodeConfigVersions(after)) {
		t.Error("a rejected topology changed member-b's NodeConfigs")
	}

	// member-b's API server stops: the others stay reconciled and keep
	// their routes to it; status names it.
	o = get()
	o.Spec.Clusters[2].Network.GlobalCIDRs["10.244.0.0/16"] = "100.65.0.0/16" // valid again
	if err := host.Update(ctx, o); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "Ready after the fix", func() bool {
		o = get()
		c := cond(o, reconciler.CondReady)
		return o.Status.ObservedGeneration == o.Generation && c != nil && c.Status == metav1.ConditionTrue
	})
	if err := env.Cluster("member-b").Pause(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "member-b reported unreachable", func() bool {
		o = get()
		return !clusterStatus(o, "member-b").Reachable && clusterStatus(o, "member-b").Message != ""
	})
	for _, n := range []string{"host", "member-a", "member-c"} {
		if c := clusterStatus(o, n); !c.Reachable {
			t.Errorf("cluster %s unreachable after member-b stopped: %s", n, c.Message)
		}
	}
	routesToB := func() bool {
		hn, ok := derived(t, host, "host-n1")
		if !ok {
			t.Fatal("host-n1's NodeConfig is gone")
		}
		return slices.ContainsFunc(hn.Routes, func(r v1alpha1.Route) bool { return strings.HasPrefix(r.Dst, "100.65.") })
	}
	if !routesToB() {
		t.Error("the host lost its routes to unreachable member-b")
	}
	// Meanwhile the others still converge: a node joins member-a.
	if err := testenv.CreateNode(ctx, clients["member-a"], "member-a-n9", []string{"192.168.2.19"}, []string{"10.244.9.0/24"}, nil); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the host to route to member-a's new node while member-b is down", func() bool {
		hn, ok := derived(t, host, "host-n1")
		return ok && slices.ContainsFunc(hn.Routes, func(r v1alpha1.Route) bool { return r.Dst == "100.64.9.0/24" })
	})

	// member-b comes back: it converges too (its gateway learns the new
	// member-a node), and the topology is Ready again.
	if err := env.Cluster("member-b").Resume(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 60*time.Second, "Ready after member-b came back", func() bool {
		o = get()
		c := cond(o, reconciler.CondReady)
		return c != nil && c.Status == metav1.ConditionTrue
	})
	poll.Until(t, 30*time.Second, "member-b to route to member-a's new node", func() bool {
		var l v1alpha1.NodeConfigList
		if clients["member-b"].List(ctx, &l) != nil {
			return false
		}
		return slices.ContainsFunc(l.Items, func(nc v1alpha1.NodeConfig) bool {
			return slices.ContainsFunc(derivedOf(t, clients["member-b"], &nc).Routes, func(r v1alpha1.Route) bool { return r.Dst == "100.64.9.0/24" })
		})
	})

	// Deleting the object takes Kosmos out of the fleet: the finalizer holds
	// it; the deletion guard holds the prune until the token is confirmed
	// on the object; then every cluster is emptied of what Kosmos wrote and
	// the object goes.
	if o = get(); !slices.Contains(o.Finalizers, v1alpha1.FinalizerCleanup) {
		t.Fatalf("finalizers %v, want %s", o.Finalizers, v1alpha1.FinalizerCleanup)
	}
	if err := host.Delete(ctx, o); err != nil {
		t.Fatal(err)
	}
	var token string
	poll.Until(t, 30*time.Second, "the deletion guard in status", func() bool {
		o = get()
		c := cond(o, reconciler.CondStalled)
		if c == nil || c.Reason != reconciler.ReasonDeletionGuard {
			return false
		}
		_, rest, _ := strings.Cut(c.Message, v1alpha1.AnnotationConfirmDeletions+`: "`)
		token, _, _ = strings.Cut(rest, `"`)
		return token != ""
	})
	for _, n := range names {
		if es, err := apply.LegacyOwned(ctx, clients[n], topo.Name); err != nil || len(es) == 0 {
			t.Fatalf("cluster %s was emptied before the confirmation: %v %v", n, es, err)
		}
	}
	o.Annotations = map[string]string{v1alpha1.AnnotationConfirmDeletions: token}
	if err := host.Update(ctx, o); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 60*time.Second, "the object to go", func() bool {
		return apierrors.IsNotFound(host.Get(ctx, client.ObjectKeyFromObject(topo), &v1alpha1.KosmosTopology{}))
	})
	for _, n := range names {
		if es, err := apply.LegacyOwned(ctx, clients[n], topo.Name); err != nil || len(es) != 0 {
			t.Errorf("cluster %s still holds %v (%v)", n, es, err)
		}
	}
	if err := host.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.InventoryPrefix + topo.Name}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("the inventory outlived its topology: %v", err)
	}
}

func nodeConfigVersions(l v1alpha1.NodeConfigList) []string {
	var out []string
	for _, it := range l.Items {
		out = append(out, it.Name+"@"+it.ResourceVersion)
	}
	slices.Sort(out)
	return out
}

// assertNoCredential fails when the status quotes anything from a kubeconfig.
func assertNoCredential(t *testing.T, o *v1alpha1.KosmosTopology) {
	t.Helper()
	s := fmt.Sprintf("%+v", o.Status)
	for _, bad := range []string{"BEGIN", "client-key-data", "/bin/secret-value"} {
		if strings.Contains(s, bad) {
			t.Errorf("status quotes %q:\n%s", bad, s)
		}
	}
}

const execKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/secret-value}}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
