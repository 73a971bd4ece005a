package reconciler_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestAgentReportWakesReconciler: an agent rolled back to the release
// before the shared contract reports an apply without contract Shared; the
// reconciler, woken by that status write (the resync is an hour away),
// writes the node a complete NodeConfig at once. An upgraded agent's report
// gets it the compact one back.
func TestAgentReportWakesReconciler(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{Names: []string{"a", "b"}, CRDDirs: []string{filepath.Join("..", "kustomize", "base", "crds")}})
	clients := env.ClientsT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := testenv.CreateNode(ctx, clients["a"], "a-n1", []string{"192.168.1.11"}, []string{"10.244.1.0/24"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := testenv.CreateNode(ctx, clients["b"], "b-n1", []string{"192.168.2.11"}, []string{"10.245.1.0/24"}, nil); err != nil {
		t.Fatal(err)
	}
	ctl := &reconciler.Controller{
		TopologyPath: filepath.Join("testdata", "agents-topology.yaml"),
		Connect: func(tp *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
			return reconciler.ConnectContexts(tp, env.KubeconfigPath)
		},
		Resync: time.Hour, // changes must come from the watches
		Prune:  true,
		Log:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	var passes, lastPass atomic.Int64
	ctl.OnPass = func(reconciler.Report, error) { passes.Add(1); lastPass.Store(time.Now().UnixNano()) }
	// quiet waits until no pass has run for longer than a debounce can
	// hold one back: what follows can only be woken by the test's writes.
	quiet := func() {
		t.Helper()
		poll.Until(t, 30*time.Second, "the controller to be idle", func() bool {
			return passes.Load() > 0 && time.Since(time.Unix(0, lastPass.Load())) > 3*time.Second
		})
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = ctl.Run(ctx) }()
	defer func() { cancel(); <-done }()

	a := clients["a"]
	own := func() (v1alpha1.NodeConfig, bool) {
		var nc v1alpha1.NodeConfig
		return nc, a.Get(ctx, client.ObjectKey{Name: "a-n1"}, &nc) == nil
	}
	routesToB := func() bool {
		nc, ok := own()
		return ok && slices.ContainsFunc(nc.Spec.Routes, func(r v1alpha1.Route) bool { return r.Dst == "10.245.1.0/24" })
	}
	poll.Until(t, time.Minute, "a-n1's compact NodeConfig", func() bool { nc, ok := own(); return ok && nc.Spec.Peers != nil })
	if routesToB() {
		t.Fatal("a NodeConfig no agent reported on is complete; want compact")
	}
	report := func(contract string, peers []v1alpha1.AppliedPeers) {
		t.Helper()
		poll.NoError(t, 10*time.Second, "the agent's status write", func() error {
			nc, _ := own()
			nc.Status.Contract, nc.Status.Peers = contract, peers
			cond := metav1.Condition{Type: "Applied", Status: metav1.ConditionTrue, Reason: "Applied", Message: "the kernel holds this config", ObservedGeneration: nc.Generation, LastTransitionTime: metav1.Now()}
			nc.Status.Conditions = []metav1.Condition{cond}
			return a.Status().Update(ctx, &nc)
		})
	}
	var peers v1alpha1.ClusterPeersList
	if err := a.List(ctx, &peers); err != nil || len(peers.Items) != 1 {
		t.Fatalf("want b's one ClusterPeers in a: %v, %d", err, len(peers.Items))
	}
	applied := []v1alpha1.AppliedPeers{{Name: peers.Items[0].Name, Generation: peers.Items[0].Generation}}

	// The current agent reports: nothing changes, and no pass is needed.
	report(v1alpha1.ContractShared, applied)
	// The agent is rolled back: its status loses the fields it does not know.
	quiet()
	report("", nil)
	took := poll.Until(t, 15*time.Second, "a complete NodeConfig for the rolled-back agent", routesToB)
	t.Logf("rolled-back agent got its complete NodeConfig after %s", took)

	// Upgraded again: the compact one comes back.
	quiet()
	report(v1alpha1.ContractShared, applied)
	took = poll.Until(t, 15*time.Second, "the compact NodeConfig for the upgraded agent", func() bool { return !routesToB() })
	t.Logf("upgraded agent got its compact NodeConfig after %s", took)

	// kosmos check reads the same: a holds b's complete set and a-n1
	// applied its generation; b-n1's agent has not reported.
	topo, err := schema.LoadFile(ctl.TopologyPath)
	if err != nil {
		t.Fatal(err)
	}
	r, err := check.Collect(ctx, topo, env.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, c := range r.Checks(topo, true) {
		rows[c.Name] = c.Result + ": " + c.Detail
	}
	for name, want := range map[string]string{
		"cluster a ClusterPeers":         "PASS: complete shard sets of all 1 other clusters (1 objects)",
		"cluster a ClusterPeers applied": "PASS: 1 of 1 agents applied the current generations",
		"cluster b ClusterPeers":         "PASS: complete shard sets of all 1 other clusters (1 objects)",
		"cluster b ClusterPeers applied": "FAIL: 0 of 1 agents applied the current generations; 1 not reported",
	} {
		if rows[name] != want {
			t.Errorf("check row %q: got %q, want %q", name, rows[name], want)
		}
	}
}
