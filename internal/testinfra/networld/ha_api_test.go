package networld

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestGatewayChoiceInStatus: an agent following the API server reports the
// gateway candidate it sends through in its NodeConfig's status.gateways,
// and counts its failovers in kosmos_gateway_failovers_total, when the
// active gateway's link goes down.
func TestGatewayChoiceInStatus(t *testing.T) {
	requireRoot(t)
	env, c := eastAPI(t)
	ctx := context.Background()

	nodes := haNodes[:4] // e1, g1, g2, g3
	w, err := Build("khs-", nodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Destroy)
	_, p := plan(t, haTopology, nodes)
	dir := t.TempDir()
	for _, nc := range p.Cluster("gw").Configs {
		f := filepath.Join(dir, nc.Name+".yaml")
		if err := os.WriteFile(f, configFile(t, p, "gw", nc), 0o644); err != nil {
			t.Fatal(err)
		}
		startHAAgent(t, w.NodeNS("gw", nc.Name), f)
	}
	nc := p.Cluster("east").Configs[0].DeepCopy()
	if err := c.Create(ctx, nc); err != nil {
		t.Fatal(err)
	}
	for _, cp := range p.Cluster("gw").Peers {
		obj := cp.DeepCopy()
		obj.Labels = map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy}
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	health := ln.Addr().String()
	ln.Close()
	var log syncBuffer
	agent := exec.Command(kosmosBin, "agent", "--node", "e1", "--kubeconfig", env.KubeconfigPath, "--netns", w.NodeNS("east", "e1"),
		"--resync", "30s", "--health-addr", health, "--probe-interval", "100ms", "--failback-hold", haHold.String())
	agent.Stdout, agent.Stderr = &log, &log
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })

	active := func(want string) func() bool {
		return func() bool {
			var got v1alpha1.NodeConfig
			if c.Get(ctx, client.ObjectKey{Name: "e1"}, &got) != nil {
				return false
			}
			g := got.Status.Gateways
			return len(g) == 1 && g[0].Cluster == "gw" && g[0].Active == want && !g[0].Since.IsZero()
		}
	}
	// The probes' evidence: the candidate in use answered, and which
	// are down (status.gateways[].answered, .down).
	evidence := func(down ...string) func() bool {
		return func() bool {
			var got v1alpha1.NodeConfig
			if c.Get(ctx, client.ObjectKey{Name: "e1"}, &got) != nil {
				return false
			}
			g := got.Status.Gateways
			return len(g) == 1 && g[0].Answered != nil && *g[0].Answered && slices.Equal(g[0].Down, down)
		}
	}
	poll.Until(t, 20*time.Second, "status.gateways to name g1", active("g1"))
	poll.Until(t, 10*time.Second, "status.gateways to say g1 answered, none down", evidence())
	if _, err := Run("ip", "-n", w.underlayNS(), "link", "set", "u1", "down"); err != nil {
		t.Fatal(err)
	}
	took := poll.Until(t, 10*time.Second, "status.gateways to name g2", active("g2"))
	t.Logf("status named g2 %v after g1's link went down", took.Round(time.Millisecond))
	poll.Until(t, 10*time.Second, "status.gateways to say g2 answered, g1 down", evidence("g1"))
	if via := routeVia(w.NodeNS("east", "e1"), "100.65.0.0/16"); via != "220.168.5.22" {
		t.Errorf("e1 routes gw via %s, want g2's 220.168.5.22", via)
	}
	resp, err := http.Get("http://" + health + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`kosmos_gateway_failovers_total{cluster="gw"} 1`, `kosmos_gateway_probe_rtt_seconds_count`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s\n%s", want, log.String())
		}
	}
}
