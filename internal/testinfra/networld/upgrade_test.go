package networld

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// upgradeFrom is the last release of the earlier contract (complete
// NodeConfigs, no ClusterPeers): the commit this contract was built on.
const upgradeFrom = "38ba4973ba1eadeb046023589902e197f72f53e4"

const upgradeTopology = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: upgrade}
spec:
  clusters:
    - name: east
      role: host
      kubeconfig: {context: east}
      network: {podCIDRs: [10.10.0.0/16]}
    - name: gw
      role: member
      kubeconfig: {context: gw}
      network: {mode: Gateway, podCIDRs: [10.20.0.0/16]}
`

// buildOld builds the kosmos binary of upgradeFrom from this clone's
// history into dir.
func buildOld(t *testing.T, dir string) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	rev := upgradeFrom
	if _, err := Run("git", "-C", root, "cat-file", "-e", rev+"^{commit}"); err != nil {
		// A shallow clone: fetch the commit from where this clone came from.
		if _, ferr := Run("git", "-C", root, "fetch", "--quiet", "origin", rev); ferr != nil {
			t.Fatalf("the release before the shared contract (%s) is not in this clone and cannot be fetched from origin (%v); the upgrade test builds it from history: clone with history, or git fetch origin %s", rev, ferr, rev)
		}
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-c", fmt.Sprintf("git -C %q archive %s | tar -x -C %q", root, rev, src)).CombinedOutput(); err != nil {
		t.Fatalf("extract %s: %v\n%s", rev, err, out)
	}
	bin := filepath.Join(dir, "kosmos-old")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kosmos")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the earlier release: %v\n%s", err, out)
	}
	return bin
}

// pinger counts echo requests and replies of a continuous ping.
type pinger struct {
	cmd *exec.Cmd
	out syncBuffer
}

func startPing(t *testing.T, ns, to string) *pinger {
	t.Helper()
	p := &pinger{cmd: exec.Command("ip", "netns", "exec", ns, "ping", "-i", "0.05", "-W", "1", to)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// stop ends the ping with SIGINT and returns how many requests were sent
// and answered.
// replies counts the echo replies so far.
func (p *pinger) replies() int { return strings.Count(p.out.String(), " bytes from ") }

// awaitReplies waits until each pinger has n more replies than now: the
// pings ran through the phase at hand (a lost one only delays this; stop
// counts it).
func awaitReplies(t *testing.T, pings []*pinger, n int) {
	t.Helper()
	for _, p := range pings {
		want := p.replies() + n
		poll.Until(t, 30*time.Second, fmt.Sprintf("%d more ping replies", n), func() bool { return p.replies() >= want })
	}
}

func (p *pinger) stop(t *testing.T) (sent, received int) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	_ = p.cmd.Wait()
	m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`).FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("no ping summary:\n%s", p.out.String())
	}
	sent, _ = strconv.Atoi(m[1])
	received, _ = strconv.Atoi(m[2])
	return sent, received
}

// agentProc is one running node agent.
type agentProc struct {
	cmd *exec.Cmd
	log syncBuffer
}

func startAgent(t *testing.T, bin, node, kubeconfig, ns string) *agentProc {
	t.Helper()
	args := []string{"agent", "--node", node, "--kubeconfig", kubeconfig, "--netns", ns, "--resync", "30s", "--health-addr", ""}
	if bin == kosmosBin { // the earlier release has no WireGuard key to keep
		args = append(args, "--state-dir", t.TempDir())
	}
	a := &agentProc{cmd: exec.Command(bin, args...)}
	a.cmd.Stdout, a.cmd.Stderr = &a.log, &a.log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.cmd.Process.Kill(); _ = a.cmd.Wait() })
	return a
}

// TestUpgradeToSharedContract: agents of the earlier release follow the
// complete NodeConfigs it wrote; the reconciler is switched to this one
// (which keeps writing complete NodeConfigs for them, adding spec.peers and
// the ClusterPeers); then the agents are replaced one by one, and the next
// pass writes the short NodeConfigs of the shared contract. Continuous pings
// both ways lose nothing throughout.
func TestUpgradeToSharedContract(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	oldBin := buildOld(t, dir)
	env := testenv.StartT(t, testenv.Options{Names: []string{"east", "gw"}})
	clients := env.ClientsT(t)
	ctx := context.Background()
	nodes := []NodeSpec{
		node("east", "e1", "192.168.0.11/24", "10.10.1.0/24"),
		node("east", "e2", "192.168.0.12/24", "10.10.2.0/24"),
		node("gw", "g1", "192.168.0.21/24", "10.20.1.0/24"),
		node("gw", "g2", "192.168.0.22/24", "10.20.2.0/24"),
	}
	kubeconfigs := map[string]string{}
	for _, c := range []string{"east", "gw"} {
		data, err := env.KubeconfigFor(c)
		if err != nil {
			t.Fatal(err)
		}
		kubeconfigs[c] = filepath.Join(dir, c+".kubeconfig")
		if err := os.WriteFile(kubeconfigs[c], data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if err := testenv.CreateNode(ctx, clients[n.Cluster], n.Name, []string{n.Underlay[0].Addr().String()}, []string{n.PodCIDRs[0].String()}, nil); err != nil {
			t.Fatal(err)
		}
	}
	w, err := Build("ktu-", nodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Destroy)
	topo := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(topo, []byte(upgradeTopology), 0o644); err != nil {
		t.Fatal(err)
	}
	apply := func(bin string) {
		t.Helper()
		if out, err := exec.Command(bin, "apply", "-f", topo, "--kubeconfig", env.KubeconfigPath).CombinedOutput(); err != nil {
			t.Fatalf("%s apply: %v\n%s", filepath.Base(bin), err, out)
		}
	}
	get := func(n NodeSpec) *v1alpha1.NodeConfig {
		var nc v1alpha1.NodeConfig
		if err := clients[n.Cluster].Get(ctx, client.ObjectKey{Name: n.Name}, &nc); err != nil {
			return nil
		}
		return &nc
	}
	applied := func(n NodeSpec, contract string) func() bool {
		return func() bool {
			nc := get(n)
			if nc == nil {
				return false
			}
			c := meta.FindStatusCondition(nc.Status.Conditions, "Applied")
			return c != nil && c.Status == "True" && c.ObservedGeneration == nc.Generation && nc.Status.Contract == contract
		}
	}

	// The earlier release: its reconciler, its agents.
	apply(oldBin)
	agents := map[string]*agentProc{}
	for _, n := range nodes {
		agents[n.Name] = startAgent(t, oldBin, n.Name, kubeconfigs[n.Cluster], w.NodeNS(n.Cluster, n.Name))
	}
	for _, n := range nodes {
		poll.Until(t, 30*time.Second, n.Name+" applied by the earlier agent", applied(n, ""))
	}
	to := func(n NodeSpec) string { return PodIP(n.PodCIDRs[0]).String() }
	if err := ping(w.PodNS("east", "e1"), PodIP(nodes[3].PodCIDRs[0])); err != nil {
		t.Fatalf("the earlier release does not connect east and gw: %v", err)
	}
	pings := []*pinger{startPing(t, w.PodNS("east", "e1"), to(nodes[3])), startPing(t, w.PodNS("gw", "g2"), to(nodes[1]))}

	// This reconciler, the agents still of the earlier release: their
	// NodeConfigs stay complete.
	apply(kosmosBin)
	var shared v1alpha1.ClusterPeersList
	if err := clients["east"].List(ctx, &shared); err != nil || len(shared.Items) == 0 {
		t.Fatalf("no ClusterPeers in east: %v", err)
	}
	if nc := get(nodes[0]); nc == nil || len(nc.Spec.Routes) == 0 || nc.Spec.Peers == nil {
		t.Fatalf("e1's NodeConfig is not complete with spec.peers while its agent is of the earlier release: %+v", nc)
	}
	awaitReplies(t, pings, 20) // the pings run through this phase

	// The agents upgraded, one by one.
	for _, n := range nodes {
		_ = agents[n.Name].cmd.Process.Signal(syscall.SIGTERM)
		_ = agents[n.Name].cmd.Wait()
		agents[n.Name] = startAgent(t, kosmosBin, n.Name, kubeconfigs[n.Cluster], w.NodeNS(n.Cluster, n.Name))
		poll.Until(t, 30*time.Second, n.Name+" applied by the upgraded agent", applied(n, v1alpha1.ContractShared))
	}

	// The next pass writes the short NodeConfigs; the kernels keep what
	// they hold.
	apply(kosmosBin)
	if nc := get(nodes[0]); nc == nil || len(nc.Spec.Routes) != 0 || len(nc.Spec.FDB) != 0 {
		t.Errorf("e1's NodeConfig still lists the shared entries once its agent is upgraded: %+v", nc)
	}
	for _, n := range nodes {
		poll.Until(t, 30*time.Second, n.Name+" applied the short NodeConfig", applied(n, v1alpha1.ContractShared))
	}
	awaitReplies(t, pings, 20) // the pings run on the short NodeConfigs
	for i, p := range pings {
		sent, received := p.stop(t)
		t.Logf("ping %d: %d sent, %d answered", i, sent, received)
		if sent < 20 || received != sent {
			t.Errorf("ping %d lost %d of %d across the upgrade\n%s", i, sent-received, sent, p.out.String()[max(0, len(p.out.String())-400):])
		}
	}
	if out, _ := Run("ip", "-n", w.NodeNS("east", "e1"), "route", "show", "proto", "75"); !strings.Contains(out, "10.20.0.0/16") {
		t.Errorf("e1 lost its route to gw:\n%s", out)
	}
}
