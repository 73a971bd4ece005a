package reconciler_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// swapIn writes the topology the way a mounted ConfigMap changes: a new
// directory, then an atomic rename of the ..data symlink.
func swapIn(t *testing.T, dir, version, content string) {
	t.Helper()
	vdir := filepath.Join(dir, version)
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vdir, "topology.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(version, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// TestControllerConverges runs the reconciler against four real clusters.
func TestControllerConverges(t *testing.T) {
	names := []string{"host", "member-a", "member-b", "member-c"}
	env := testenv.StartT(t, testenv.Options{Names: names})
	clients := env.ClientsT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := testenv.ExampleNodes(ctx, clients); err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join("..", "topology.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	swapIn(t, dir, "v1", string(example))
	if err := os.Symlink("..data/topology.yaml", filepath.Join(dir, "topology.yaml")); err != nil {
		t.Fatal(err)
	}

	ctl := &reconciler.Controller{
		TopologyPath: filepath.Join(dir, "topology.yaml"),
		Connect: func(tp *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
			return reconciler.ConnectContexts(tp, env.KubeconfigPath)
		},
		Resync: time.Minute, // changes must come from the watches, not the resync
		Prune:  true,
		Log:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	passes := make(chan error, 100)
	ctl.OnPass = func(_ reconciler.Report, err error) {
		select {
		case passes <- err:
		default:
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = ctl.Run(ctx) }()
	defer func() { cancel(); <-done }()

	exists := func(c client.Client, obj client.Object, name string) func() bool {
		return func() bool { return c.Get(ctx, client.ObjectKey{Name: name}, obj) == nil }
	}
	select {
	case err := <-passes:
		if err != nil {
			t.Fatalf("first pass: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no first pass within 60s")
	}
	if !exists(clients["host"], &v1alpha1.DistributionPolicy{}, "api-fixed")() {
		t.Fatal("first pass did not create the policies")
	}

	// A node joins member-a: its NodeConfig appears and the host routes to
	// its pods (by member-a's GlobalCIDR).
	if err := testenv.CreateNode(ctx, clients["member-a"], "member-a-n3", []string{"192.168.2.13"}, []string{"10.244.3.0/24"}, nil); err != nil {
		t.Fatal(err)
	}
	took := poll.Until(t, 10*time.Second, "the host to route to the new node", func() bool {
		nc, ok := derived(t, clients["host"], "host-n1")
		return ok && slices.ContainsFunc(nc.Routes, func(r v1alpha1.Route) bool { return r.Dst == "100.64.3.0/24" })
	})
	t.Logf("node join reflected in the host's NodeConfig after %s", took)
	poll.Until(t, 5*time.Second, "the new node's NodeConfig", exists(clients["member-a"], &v1alpha1.NodeConfig{}, "member-a-n3"))

	// member-b's gateway goes NotReady: another node takes over.
	gateway := func() string {
		var l v1alpha1.NodeConfigList
		if clients["member-b"].List(ctx, &l, client.MatchingLabels{v1alpha1.LabelRole: v1alpha1.RoleGateway}) != nil || len(l.Items) != 1 {
			return ""
		}
		return l.Items[0].Name
	}
	old := gateway()
	var n corev1.Node
	if err := clients["member-b"].Get(ctx, client.ObjectKey{Name: old}, &n); err != nil {
		t.Fatal(err)
	}
	n.Status.Conditions[0].Status = corev1.ConditionFalse
	n.Status.Conditions[0].LastTransitionTime = metav1.Now()
	if err := clients["member-b"].Status().Update(ctx, &n); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the gateway to move off "+old, func() bool { g := gateway(); return g != "" && g != old })

	// An invalid topology: reported, nothing changes.
	swapIn(t, dir, "v2", strings.Replace(string(example), "role: host", "role: boss", 1))
	poll.Until(t, 10*time.Second, "the invalid topology to be reported", func() bool {
		_, err := ctl.Status()
		return err != nil && strings.Contains(err.Error(), `spec.clusters[0].role: "boss" is not one of host, member`)
	})
	if !exists(clients["host"], &v1alpha1.DistributionPolicy{}, "api-fixed")() {
		t.Fatal("an invalid topology changed the clusters")
	}

	// A valid edit: the api-fixed policy removed → pruned in the host.
	edited := strings.Split(string(example), "    # Two API replicas pinned")[0] + "\n  services:\n    - {namespace: shop, name: web}\n"
	swapIn(t, dir, "v3", edited)
	poll.Until(t, 10*time.Second, "api-fixed to be pruned", func() bool {
		return !exists(clients["host"], &v1alpha1.DistributionPolicy{}, "api-fixed")()
	})
	if _, err := ctl.Status(); err != nil {
		t.Errorf("valid topology still reported as rejected: %v", err)
	}
}
