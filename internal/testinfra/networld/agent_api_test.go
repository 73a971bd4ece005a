package networld

import (
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestAgentFollowsAPI runs the agent against a real API server: it applies
// its node's NodeConfig, reports status, follows an update, refuses a bad
// config (the kernel keeps the last good state), and tears down when the
// NodeConfig is deleted.
func TestAgentFollowsAPI(t *testing.T) {
	requireRoot(t)
	env, c := eastAPI(t)
	ctx := context.Background()

	nodes := []NodeSpec{worldNodes[0], worldNodes[4]}
	w, err := Build("kta-", nodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Destroy)
	topo, p := plan(t, worldTopology, nodes)
	applyPlan(t, w, p) // w1 by file; e1 is then handed to the API-driven agent
	ns := w.NodeNS("east", "e1")
	if _, err := InNS(ns, kosmosBin, "agent", "--teardown"); err != nil {
		t.Fatal(err)
	}

	nc := p.Cluster("east").Configs[0].DeepCopy()
	nc.Name = "e1"
	if err := c.Create(ctx, nc); err != nil {
		t.Fatal(err)
	}
	// The shared objects e1 derives its routes to west from.
	var shared []*v1alpha1.ClusterPeers
	for _, cp := range p.Cluster("west").Peers {
		obj := cp.DeepCopy()
		obj.Labels = map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy}
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		shared = append(shared, obj)
	}
	var log syncBuffer
	healthLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	health := healthLn.Addr().String()
	healthLn.Close()
	agent := exec.Command(kosmosBin, "agent", "--node", "e1", "--kubeconfig", env.KubeconfigPath, "--netns", ns, "--resync", "30s", "--health-addr", health, "--state-dir", t.TempDir())
	agent.Stdout, agent.Stderr = &log, &log
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })

	applied := func(status string) func() bool {
		return func() bool {
			var got v1alpha1.NodeConfig
			if err := c.Get(ctx, client.ObjectKey{Name: "e1"}, &got); err != nil {
				return false
			}
			cond := meta.FindStatusCondition(got.Status.Conditions, "Applied")
			return cond != nil && string(cond.Status) == status && got.Status.ObservedGeneration == got.Generation
		}
	}
	poll.Until(t, 15*time.Second, "status Applied=True", applied("True"))
	var st v1alpha1.NodeConfig
	if err := c.Get(ctx, client.ObjectKey{Name: "e1"}, &st); err != nil {
		t.Fatal(err)
	}
	if st.Status.Contract != v1alpha1.ContractShared || len(st.Status.Peers) != len(shared) || st.Status.Peers[0].Name != shared[0].Name || st.Status.Peers[0].Generation != 1 {
		t.Errorf("status does not name the shared objects applied: contract %q, peers %v", st.Status.Contract, st.Status.Peers)
	}
	// The agent publishes its WireGuard public key (made on first start)
	// for the planner, encryption or not; the private key stays on the node.
	if w := st.Status.WireGuard; w == nil || len(w.PublicKey) != v1alpha1.WireGuardPublicKeyLength || w.Path != "" {
		t.Errorf("status.wireGuard %+v: want the public key, and no path without spec.wireGuard", w)
	}
	if err := ping(w.PodNS("east", "e1"), globalAddr(topo, nodes[1])); err != nil {
		t.Fatalf("after the agent applied the API's config: %v\n%s", err, log.String())
	}

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get("http://" + health + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || (path == "/metrics" && !strings.Contains(string(body), `kosmos_agent_passes_total{outcome="ok"}`)) {
			t.Errorf("GET %s: %d\n%.300s", path, resp.StatusCode, body)
		}
	}

	routes := func() string { out, _ := Run("ip", "-n", ns, "route", "show", "proto", "75"); return out }
	// An update: the shared objects of west go (every route to west with
	// them); the kernel follows.
	for _, obj := range shared {
		if err := c.Delete(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 10*time.Second, "routes removed", func() bool { return strings.TrimSpace(routes()) == "" })
	poll.Until(t, 10*time.Second, "status without shared objects", func() bool {
		var got v1alpha1.NodeConfig
		return c.Get(ctx, client.ObjectKey{Name: "e1"}, &got) == nil && len(got.Status.Peers) == 0 && applied("True")()
	})
	var cur v1alpha1.NodeConfig
	if err := c.Get(ctx, client.ObjectKey{Name: "e1"}, &cur); err != nil {
		t.Fatal(err)
	}
	kept := cur.Spec.Routes

	// A config the API accepts but the agent refuses: the kernel keeps the
	// last good state and status says why.
	if err := c.Get(ctx, client.ObjectKey{Name: "e1"}, &cur); err != nil {
		t.Fatal(err)
	}
	cur.Spec.Routes = append(kept, v1alpha1.Route{Dst: "10.99.0.0/16", Via: "220.0.0.1", Device: "vx-elsewhere"})
	if err := c.Update(ctx, &cur); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "status Applied=False", applied("False"))
	var got v1alpha1.NodeConfig
	_ = c.Get(ctx, client.ObjectKey{Name: "e1"}, &got)
	if cond := meta.FindStatusCondition(got.Status.Conditions, "Applied"); cond.Reason != "Refused" || !strings.Contains(cond.Message, "vx-elsewhere") {
		t.Errorf("refusal not explained: %+v", cond)
	}
	if strings.TrimSpace(routes()) != "" {
		t.Errorf("a refused config reached the kernel:\n%s", routes())
	}

	// Deleting the NodeConfig tears everything down.
	if err := c.Delete(ctx, &got); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "teardown", func() bool {
		links, _ := Run("ip", "-n", ns, "-o", "link")
		return !strings.Contains(links, "vx-")
	})
}

// eastAPI starts one real API server, "east", with Kosmos's CRDs, and
// returns it and a client that knows Kosmos's kinds.
func eastAPI(t *testing.T) (*testenv.Env, client.Client) {
	t.Helper()
	env := testenv.StartT(t, testenv.Options{Names: []string{"east"}})
	cfg := env.Cluster("east").Config
	if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: []string{filepath.Join("..", "..", "..", "kustomize", "base", "crds")}, ErrorIfPathMissing: true}); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return env, c
}
