package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestApplyRenderFacts drives the CLI against four real clusters reached
// through the contexts of one kubeconfig.
func TestApplyRenderFacts(t *testing.T) {
	names := []string{"host", "member-a", "member-b", "member-c"}
	env := testenv.StartT(t, testenv.Options{Names: names})
	clients := env.ClientsT(t)
	if err := testenv.ExampleNodes(context.Background(), clients); err != nil {
		t.Fatal(err)
	}
	example := "../../topology.example.yaml"
	kc := env.KubeconfigPath

	// Before anything is applied, diff shows the creations (exit 1): in the
	// host, its namespace, 2 NodeConfigs, 3 Clusters, 2 policies, the
	// kosmos-dns ConfigMap and the ClusterPeers of the 3 members.
	code, out, errs := kosmos("diff", "-f", example, "--kubeconfig", kc)
	if code != 1 || !strings.Contains(out, "cluster host: 12 to create, 0 to change, 0 to delete") || !strings.Contains(out, "+++ b/member-b/NodeConfig/member-b-n1") {
		t.Fatalf("diff before apply: exit %d\n%.3000s\n%s", code, out, errs)
	}

	code, out, errs = kosmos("apply", "-f", example, "--kubeconfig", kc)
	if code != 0 || !strings.Contains(out, "cluster host: 12 created") || !strings.Contains(out, "+ NodeConfig/member-b-n1") {
		t.Fatalf("first apply: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = kosmos("apply", "-f", example, "--kubeconfig", kc)
	if code != 0 || strings.Count(out, "0 created, 0 updated, 0 pruned") != 4 {
		t.Errorf("second apply should change nothing: exit %d\n%s", code, out)
	}

	// After apply: no difference (server defaults do not show), exit 0.
	code, out, errs = kosmos("diff", "-f", example, "--kubeconfig", kc)
	if code != 0 || strings.Count(out, "0 to create, 0 to change, 0 to delete") != 4 {
		t.Errorf("diff after apply: exit %d\n%.3000s\n%s", code, out, errs)
	}
	// A changed topology: the member's Cluster object changes.
	changedFile := filepath.Join(t.TempDir(), "changed.yaml")
	data0, _ := os.ReadFile(example)
	if err := os.WriteFile(changedFile, []byte(strings.Replace(string(data0), "tier: standard", "tier: gold", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = kosmos("diff", "-f", changedFile, "--kubeconfig", kc)
	if code != 1 || !strings.Contains(out, "cluster host: 0 to create, 1 to change, 0 to delete") || !strings.Contains(out, "-    tier: standard\n+    tier: gold") {
		t.Errorf("diff of a changed topology: exit %d\n%.3000s", code, out)
	}

	code, facts, errs := kosmos("facts", "-f", example, "--kubeconfig", kc)
	if code != 0 || !strings.Contains(facts, "member-b-n1") || !strings.Contains(facts, "gateway: member-b-n1") {
		t.Fatalf("facts: exit %d\n%s\n%s", code, facts, errs)
	}
	factsFile := filepath.Join(t.TempDir(), "facts.yaml")
	if err := os.WriteFile(factsFile, []byte(facts), 0o644); err != nil {
		t.Fatal(err)
	}
	code, rendered, errs := kosmos("render", "-f", example, "--facts", factsFile)
	if code != 0 || !strings.Contains(rendered, "# cluster: member-b\napiVersion: kosmos.io/v1alpha1\nkind: NodeConfig") || !strings.Contains(rendered, "kosmos.io/role: gateway") {
		t.Errorf("render: exit %d\n%.2000s\n%s", code, rendered, errs)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	data, _ := os.ReadFile(example)
	if err := os.WriteFile(bad, []byte(strings.Replace(string(data), "role: host", "role: boss", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = kosmos("apply", "-f", bad, "--kubeconfig", kc)
	if code != 1 || !strings.Contains(errs, `bad.yaml:23:7: spec.clusters[0].role: "boss" is not one of host, member`) {
		t.Errorf("invalid topology: exit %d\n%s", code, errs)
	}

	// A kubeconfig without one of the contexts: nothing is applied.
	code, _, errs = kosmos("apply", "-f", example, "--kubeconfig", filepath.Join(t.TempDir(), "none"))
	if code != 2 || !strings.Contains(errs, "nothing applied") {
		t.Errorf("unreachable clusters: exit %d\n%s", code, errs)
	}

	// The in-cluster way: the topology as a KosmosTopology object in the
	// host, leader election on, until the object reports Ready.
	topo, err := schema.LoadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	topo.Namespace = "kosmos-system"
	if err := clients["host"].Create(context.Background(), topo); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var rout, rerr bytes.Buffer
	go func() {
		done <- runContext(ctx, []string{"reconcile", "--topology-object", "kosmos-system/example", "--connect", "contexts",
			"--kubeconfig", kc, "--context", "host", "--leader-elect", "--health-addr", "127.0.0.1:0"}, &rout, &rerr)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var o v1alpha1.KosmosTopology
		if err := clients["host"].Get(ctx, client.ObjectKeyFromObject(topo), &o); err != nil {
			t.Fatal(err)
		}
		if c := meta.FindStatusCondition(o.Status.Conditions, "Ready"); c != nil && c.Status == metav1.ConditionTrue && o.Status.ObservedGeneration == o.Generation {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("the topology object never became Ready: %+v\n%s", o.Status, rerr.String())
		}
		<-time.After(100 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("reconcile exit %d\n%s", code, rerr.String())
	}
	if !strings.Contains(rerr.String(), "leading") {
		t.Errorf("reconcile did not report taking the lease:\n%s", rerr.String())
	}
}
