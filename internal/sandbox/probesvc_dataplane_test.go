package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/internal/probe"
	"kosmos.io/kosmos/internal/testinfra/networld"
	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/reconciler"
)

const svcPrefix = "ksvc-"

// TestProbeServicesInDataplane: kosmos check --probe with --services over
// the sandbox's data plane (the example topology: real API servers, the
// real reconciler importing, real agents, GlobalCIDR NAT and a Gateway-mode
// member). Every cluster exports a probe Service; the reconciler imports
// it into the others with a ClusterSetIP; TCP and UDP echoes to each VIP
// from every other cluster's pod and host network reach the exporter's
// echo server: every "probe service" row passes, and nothing of the run
// is left (objects, nat chains). Then the VIPs' backends become
// unreachable from the host cluster's probe machine (connections to its
// service range dropped after kube-proxy's DNAT) and exactly the service
// pairs from host fail, named; pods still reach pods.
func TestProbeServicesInDataplane(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the sandbox's data plane needs root (network namespaces, VXLAN, iptables); make test runs as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "kosmos")
	if out, err := exec.Command("go", "build", "-o", bin, "kosmos.io/kosmos/cmd/kosmos").CombinedOutput(); err != nil {
		t.Fatalf("build kosmos: %v\n%s", err, out)
	}
	example, err := os.ReadFile(filepath.Join("..", "..", "topology.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	topo := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(topo, example, 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "components.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	sb, err := Start(ctx, Options{Topology: topo, Dir: filepath.Join(dir, "state"), Dataplane: true, AgentCommand: bin, NetnsPrefix: svcPrefix,
		Log: slog.New(slog.NewTextHandler(logf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sb.Stop() }()
	if err := sb.FirstApply(ctx, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := sb.StartControllers(); err != nil {
		t.Fatal(err)
	}
	nodes, err := DataplaneNodes(sb.Topology, 2)
	if err != nil {
		t.Fatal(err)
	}
	clusters, err := reconciler.ConnectContexts(sb.Topology, sb.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	runner := func() *NetnsRunner {
		r := &NetnsRunner{Prefix: svcPrefix, Topology: sb.Topology, Nodes: nodes, Clusters: map[string]client.Client{}}
		for _, c := range clusters {
			r.Clusters[c.Name] = c.Client
		}
		return r
	}
	// The pods reach each other first (the agents applied their configs).
	poll.NoError(t, 3*time.Minute, "pods of every pair of clusters reach each other", func() error {
		rows, err := probe.Run(ctx, sb.Topology, runner(), probe.Options{Timeout: time.Minute, PerProbe: 2 * time.Second, Protos: []probe.Proto{probe.TCP}})
		if err != nil {
			return err
		}
		var out bytes.Buffer
		if !check.WriteChecks(&out, rows) {
			return fmt.Errorf("\n%s", out.String())
		}
		return nil
	})

	run := func(what string) []check.Check {
		t.Helper()
		start := time.Now()
		rows, err := probe.Run(ctx, sb.Topology, runner(), probe.Options{Timeout: 2 * time.Minute, PerProbe: 2 * time.Second, Services: true})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		check.WriteChecks(&out, rows)
		t.Logf("%s: the probe table in %s:\n%s", what, time.Since(start).Round(10*time.Millisecond), out.String())
		return rows
	}
	names := []string{"host", "member-a", "member-b", "member-c"}
	svcRows := func(rows []check.Check) map[string]check.Check {
		out := map[string]check.Check{}
		for _, r := range rows {
			if strings.HasPrefix(r.Name, "probe service ") || r.Name == "probe services" || r.Name == "probe broken pairs" || r.Name == "probe cleanup" {
				out[r.Name] = r
			}
		}
		return out
	}

	rows := svcRows(run("converged"))
	if r := rows["probe services"]; r.Result != "PASS" || r.Detail != "12 of 12 imports of the probe services have a ClusterSetIP" {
		t.Errorf("probe services: %s %s", r.Result, r.Detail)
	}
	for _, from := range names {
		for _, to := range names {
			if from == to {
				continue
			}
			for _, net := range []string{"pod", "host"} {
				name := fmt.Sprintf("probe service %s/%s-net → %s", from, net, to)
				if r, ok := rows[name]; !ok || r.Result != "PASS" || !strings.Contains(r.Detail, "tcp ") || !strings.Contains(r.Detail, "udp ") {
					t.Errorf("%s: %+v, want PASS over tcp and udp", name, r)
				}
			}
		}
	}
	if r := rows["probe broken pairs"]; r.Result != "PASS" || r.Detail != "none of 48" {
		t.Errorf("broken pairs: %s %s, want none of 48", r.Result, r.Detail)
	}
	if r, ok := rows["probe cleanup"]; ok {
		t.Errorf("cleanup: %s", r.Detail)
	}
	leftovers(t, ctx, sb, nodes)

	// The host's VIPs lead nowhere: connections to its service range are
	// dropped in its probe machine after kube-proxy's DNAT (FORWARD for its
	// pod, OUTPUT for its host network).
	hostNS := (&networld.World{Prefix: svcPrefix}).NodeNS("host", nodes["host"][0].Name)
	svcCIDR := sb.Topology.Spec.Cluster("host").Network.ServiceCIDRs[0]
	for _, chain := range []string{"FORWARD", "OUTPUT"} {
		if _, err := networld.InNS(hostNS, "iptables", "-w", "-I", chain, "-m", "conntrack", "--ctorigdst", svcCIDR, "-j", "DROP"); err != nil {
			t.Fatal(err)
		}
	}
	rows = svcRows(run("the host's VIPs unreachable"))
	var want []string
	for _, to := range names[1:] {
		for _, net := range []string{"host", "pod"} {
			want = append(want, fmt.Sprintf("service host/%s-net → %s", net, to))
		}
	}
	got := strings.Split(rows["probe broken pairs"].Detail, ", ")
	slices.Sort(got)
	slices.Sort(want)
	if rows["probe broken pairs"].Result != "FAIL" || !slices.Equal(got, want) {
		t.Errorf("broken pairs: %s %q\nwant exactly %q", rows["probe broken pairs"].Result, rows["probe broken pairs"].Detail, strings.Join(want, ", "))
	}
	leftovers(t, ctx, sb, nodes)
}

// leftovers fails on probe objects or nat chains a run left behind.
func leftovers(t *testing.T, ctx context.Context, sb *Sandbox, nodes map[string][]networld.NodeSpec) {
	t.Helper()
	clusters, err := reconciler.ConnectContexts(sb.Topology, sb.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clusters {
		for _, list := range []client.ObjectList{&corev1.ServiceList{}, &mcsv1a1.ServiceExportList{}, &discoveryv1.EndpointSliceList{}} {
			if err := c.Client.List(ctx, list, client.InNamespace(probe.DefaultNamespace), client.HasLabels{probe.LabelRun}); err != nil {
				t.Fatal(err)
			}
			if n := meta.LenList(list); n > 0 {
				t.Errorf("cluster %s: %d probe objects left (%T)", c.Name, n, list)
			}
		}
	}
	w := &networld.World{Prefix: svcPrefix}
	for cluster, ns := range nodes {
		n := w.NodeNS(cluster, ns[0].Name)
		out, err := networld.InNS(n, "iptables-save", "-t", "nat")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "KPROBE-") {
			t.Errorf("%s: probe nat chains left:\n%s", n, out)
		}
	}
}
