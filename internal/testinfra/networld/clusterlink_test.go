package networld

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

var kosmosBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kosmos-networld-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kosmosBin = filepath.Join(dir, "kosmos")
	if out, err := exec.Command("go", "build", "-o", kosmosBin, "kosmos.io/kosmos/cmd/kosmos").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build kosmos: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireRoot fails (never skips): make test runs as root, and a skipped
// data-plane test would prove nothing.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the ClusterLink data-plane tests need root (network namespaces, VXLAN, iptables); run make test as root")
	}
	for _, bin := range []string{"ip", "iptables", "ping"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s missing: make test installs it (hack/deps.sh)", bin)
		}
	}
}

const worldTopology = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: world}
spec:
  clusters:
    - name: east
      role: host
      kubeconfig: {context: east}
      network: {podCIDRs: [10.10.0.0/16]}
    - name: gw
      role: member
      kubeconfig: {context: gw}
      network:
        mode: Gateway
        podCIDRs: [10.244.0.0/16]
        globalCIDRs: {10.244.0.0/16: 100.65.0.0/16}
    - name: west
      role: member
      kubeconfig: {context: west}
      network:
        podCIDRs: [10.244.0.0/16]
        globalCIDRs: {10.244.0.0/16: 100.64.0.0/16}
`

func node(cluster, name, underlay, pods string) NodeSpec {
	return NodeSpec{Cluster: cluster, Name: name, Underlay: []netip.Prefix{netip.MustParsePrefix(underlay)}, PodCIDRs: []netip.Prefix{netip.MustParsePrefix(pods)}}
}

var worldNodes = []NodeSpec{
	node("east", "e1", "192.168.0.11/24", "10.10.1.0/24"),
	node("east", "e2", "192.168.0.12/24", "10.10.2.0/24"),
	node("gw", "g1", "192.168.0.21/24", "10.244.1.0/24"),
	node("gw", "g2", "192.168.0.22/24", "10.244.2.0/24"),
	node("west", "w1", "192.168.0.31/24", "10.244.1.0/24"),
	node("west", "w2", "192.168.0.32/24", "10.244.2.0/24"),
}

// plan computes the NodeConfigs of the world from its topology and nodes.
func plan(t testing.TB, topoYAML string, nodes []NodeSpec) (*v1alpha1.KosmosTopology, *netplan.Plan) {
	t.Helper()
	topo, err := schema.Load("world.yaml", []byte(topoYAML))
	if err != nil {
		t.Fatal(err)
	}
	facts := netplan.Facts{}
	for _, n := range nodes {
		f := facts[n.Cluster]
		nd := netplan.Node{Name: n.Name, Ready: true, PodCIDRs: n.PodCIDRs}
		for _, u := range n.Underlay {
			nd.InternalIPs = append(nd.InternalIPs, u.Addr())
		}
		f.Nodes = append(f.Nodes, nd)
		facts[n.Cluster] = f
	}
	p := netplan.Compute(&topo.Spec, facts)
	if len(p.Problems) > 0 {
		t.Fatalf("plan problems: %v", p.Problems)
	}
	return topo, p
}

// configFile renders a node's NodeConfig and, as further documents, the
// ClusterPeers of the other clusters: what the agent reads.
func configFile(t testing.TB, p *netplan.Plan, cluster string, nc v1alpha1.NodeConfig) []byte {
	t.Helper()
	nc.APIVersion, nc.Kind = v1alpha1.APIVersion, v1alpha1.KindNodeConfig
	data, err := yaml.Marshal(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Clusters {
		if c.Name == cluster {
			continue
		}
		for _, cp := range c.Peers {
			more, err := yaml.Marshal(cp)
			if err != nil {
				t.Fatal(err)
			}
			data = append(append(data, "---\n"...), more...)
		}
	}
	return data
}

// applyPlan writes each node's config (with the shared objects it derives
// from) to a file and runs `kosmos agent --once` inside the node's
// namespace; it returns the agents' output.
func applyPlan(t testing.TB, w *World, p *netplan.Plan) string {
	t.Helper()
	return applyPlanWith(t, w, p, nil)
}

// applyPlanWith is applyPlan with each config passed to edit first (when
// not nil).
func applyPlanWith(t testing.TB, w *World, p *netplan.Plan, edit func(*v1alpha1.NodeConfig)) string {
	t.Helper()
	dir := t.TempDir()
	var all strings.Builder
	for _, c := range p.Clusters {
		for _, nc := range c.Configs {
			if edit != nil {
				nc = *nc.DeepCopy()
				edit(&nc)
			}
			data := configFile(t, p, c.Name, nc)
			f := filepath.Join(dir, c.Name+"-"+nc.Name+".yaml")
			if err := os.WriteFile(f, data, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := InNS(w.NodeNS(c.Name, nc.Name), kosmosBin, "agent", "--node-config", f, "--once")
			if err != nil {
				t.Fatalf("agent on %s/%s: %v", c.Name, nc.Name, err)
			}
			all.WriteString(out)
		}
	}
	return all.String()
}

// globalAddr is how pods of other clusters reach a node's pod in one family:
// its global image when its cluster maps the range.
func globalAddr(topo *v1alpha1.KosmosTopology, n NodeSpec) netip.Addr {
	return globalAddrOf(topo, n, 0)
}

func globalAddrOf(topo *v1alpha1.KosmosTopology, n NodeSpec, i int) netip.Addr {
	ip := PodIP(n.PodCIDRs[i])
	c := topo.Spec.Cluster(n.Cluster)
	for real, global := range c.Network.GlobalCIDRs {
		rp, gp := netip.MustParsePrefix(real), netip.MustParsePrefix(global)
		if rp.Contains(ip) {
			a, g := ip.As16(), gp.Addr().As16()
			bits := rp.Bits()
			if ip.Is4() {
				bits += 96
			}
			for b := 0; b < bits; b++ {
				mask := byte(0x80 >> (b % 8))
				a[b/8] = a[b/8]&^mask | g[b/8]&mask
			}
			out := netip.AddrFrom16(a)
			if ip.Is4() {
				return out.Unmap()
			}
			return out
		}
	}
	return ip
}

// ping succeeds when any of three echo requests is answered: the first
// may be spent on neighbour discovery on a loaded machine. A check that
// must not reach fails on any single answer all the same.
func ping(ns string, to netip.Addr) error {
	_, err := InNS(ns, "ping", "-c", "3", "-i", "0.2", "-W", "1", "-w", "3", to.String())
	return err
}

// inNS runs fn with the calling goroutine's thread switched into ns; sockets
// created in fn belong to ns.
func inNS(t *testing.T, ns string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // a thread left in another namespace would poison the test binary
		}
	}()
	fn()
}

// tcpSource connects from one pod to another over TCP and returns the source
// address the receiver saw.
func tcpSource(t *testing.T, fromNS, toNS string, to netip.Addr) (netip.Addr, error) {
	t.Helper()
	var ln net.Listener
	var err error
	inNS(t, toNS, func() { ln, err = net.Listen("tcp", ":7946") })
	if err != nil {
		return netip.Addr{}, err
	}
	defer ln.Close()
	seen := make(chan netip.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(seen)
			return
		}
		seen <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		c.Close()
	}()
	var conn net.Conn
	inNS(t, fromNS, func() { conn, err = net.DialTimeout("tcp", netip.AddrPortFrom(to, 7946).String(), 3*time.Second) })
	if err != nil {
		return netip.Addr{}, err
	}
	defer conn.Close()
	select {
	case a, ok := <-seen:
		if !ok {
			return netip.Addr{}, fmt.Errorf("accept failed")
		}
		return a, nil
	case <-time.After(3 * time.Second):
		return netip.Addr{}, fmt.Errorf("no connection arrived")
	}
}

// TestClusterLinkIPv4 builds three clusters (P2P, Gateway, P2P; the last two
// with the same pod CIDR, joined through GlobalCIDRs), applies the planned
// NodeConfigs with the real agent, and checks that packets cross between
// pods of every pair of clusters.
func TestClusterLinkIPv4(t *testing.T) {
	requireRoot(t)
	w, err := Build("kt4-", worldNodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Destroy)
	topo, p := plan(t, worldTopology, worldNodes)

	// Before the agents run, clusters are islands.
	if err := ping(w.PodNS("east", "e1"), globalAddr(topo, worldNodes[4])); err == nil {
		t.Fatal("east reaches west before any tunnel exists: the test world leaks")
	}
	applyPlan(t, w, p)

	for _, from := range worldNodes {
		for _, to := range worldNodes {
			if from.Cluster == to.Cluster {
				continue
			}
			dst := globalAddr(topo, to)
			if err := ping(w.PodNS(from.Cluster, from.Name), dst); err != nil {
				t.Errorf("ping %s/%s → %s/%s (%s): %v", from.Cluster, from.Name, to.Cluster, to.Name, dst, err)
			}
		}
	}

	// TCP across the overlapping pair, both ways: the receiver sees the
	// sender's global address, never its (ambiguous) real one.
	for _, c := range [][2]NodeSpec{{worldNodes[4], worldNodes[3]}, {worldNodes[3], worldNodes[5]}, {worldNodes[0], worldNodes[5]}} {
		from, to := c[0], c[1]
		src, err := tcpSource(t, w.PodNS(from.Cluster, from.Name), w.PodNS(to.Cluster, to.Name), globalAddr(topo, to))
		if err != nil {
			t.Errorf("tcp %s/%s → %s/%s: %v", from.Cluster, from.Name, to.Cluster, to.Name, err)
			continue
		}
		if want := globalAddr(topo, from); src != want {
			t.Errorf("tcp %s/%s → %s/%s: receiver saw source %s, want %s", from.Cluster, from.Name, to.Cluster, to.Name, src, want)
		}
	}

	// Restarting the agents with the same config loses no packet of a
	// continuous ping, and changes nothing anywhere.
	pinger := exec.Command("ip", "netns", "exec", w.PodNS("east", "e1"), "ping", "-q", "-c", "150", "-i", "0.01", "-W", "1", globalAddr(topo, worldNodes[4]).String())
	var pingOut strings.Builder
	pinger.Stdout, pinger.Stderr = &pingOut, &pingOut
	if err := pinger.Start(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if out := applyPlan(t, w, p); strings.Count(out, "agent: 0 change(s) applied") != len(worldNodes) {
			t.Errorf("re-applying the same plan made changes:\n%s", out)
		}
	}
	if err := pinger.Wait(); err != nil || !strings.Contains(pingOut.String(), " 0% packet loss") {
		t.Errorf("continuous ping across agent restarts: %v\n%s", err, pingOut.String())
	}

	// Removing a cluster from the topology removes its routes everywhere.
	without := strings.Split(worldTopology, "    - name: west")[0]
	var rest []NodeSpec
	for _, n := range worldNodes {
		if n.Cluster != "west" {
			rest = append(rest, n)
		}
	}
	_, p2 := plan(t, without, rest)
	applyPlan(t, w, p2)
	for _, n := range rest {
		routes, _ := Run("ip", "-n", w.NodeNS(n.Cluster, n.Name), "route", "show", "proto", "75")
		if strings.Contains(routes, "100.64.") {
			t.Errorf("%s/%s keeps routes to the removed cluster:\n%s", n.Cluster, n.Name, routes)
		}
	}
	if err := ping(w.PodNS("east", "e1"), globalAddr(topo, worldNodes[4])); err == nil {
		t.Error("east still reaches the removed cluster west")
	}
	if err := ping(w.PodNS("east", "e1"), globalAddr(topo, worldNodes[3])); err != nil {
		t.Errorf("east lost gw when west was removed: %v", err)
	}

	// Teardown leaves no kosmos device, route or chain.
	for _, n := range worldNodes {
		ns := w.NodeNS(n.Cluster, n.Name)
		if _, err := InNS(ns, kosmosBin, "agent", "--teardown"); err != nil {
			t.Fatal(err)
		}
		links, _ := Run("ip", "-n", ns, "-o", "link")
		routes, _ := Run("ip", "-n", ns, "route", "show", "proto", "75")
		rules, _ := InNS(ns, "iptables-save")
		if strings.Contains(links, "vx-") || strings.TrimSpace(routes) != "" || strings.Contains(rules, "KOSMOS") {
			t.Errorf("%s after teardown:\n%s\n%s\n%s", ns, links, routes, rules)
		}
	}
	if err := ping(w.PodNS("east", "e1"), globalAddr(topo, worldNodes[4])); err == nil {
		t.Error("east still reaches west after teardown")
	}
}

const dualTopology = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: dual}
spec:
  clusters:
    - name: east
      role: host
      kubeconfig: {context: east}
      network: {ipFamily: DualStack, podCIDRs: [10.10.0.0/16, "fd10::/56"]}
    - name: gw
      role: member
      kubeconfig: {context: gw}
      network: {ipFamily: DualStack, mode: Gateway, podCIDRs: [10.20.0.0/16, "fd20::/56"]}
    - name: west
      role: member
      kubeconfig: {context: west}
      network:
        ipFamily: IPv6
        podCIDRs: ["fd30::/56"]
        globalCIDRs: {"fd30::/56": "fd99::/56"}
`

func dualNode(cluster, name string, underlay []string, pods []string) NodeSpec {
	n := NodeSpec{Cluster: cluster, Name: name}
	for _, u := range underlay {
		n.Underlay = append(n.Underlay, netip.MustParsePrefix(u))
	}
	for _, p := range pods {
		n.PodCIDRs = append(n.PodCIDRs, netip.MustParsePrefix(p))
	}
	return n
}

// TestClusterLinkDualStack: IPv4 and IPv6 planned independently over the
// -6 devices: dual-stack P2P and Gateway clusters, and an IPv6-only cluster
// reached through an IPv6 GlobalCIDR.
func TestClusterLinkDualStack(t *testing.T) {
	requireRoot(t)
	nodes := []NodeSpec{
		dualNode("east", "e1", []string{"192.168.0.11/24", "fd00::11/64"}, []string{"10.10.1.0/24", "fd10:0:0:1::/64"}),
		dualNode("gw", "g1", []string{"192.168.0.21/24", "fd00::21/64"}, []string{"10.20.1.0/24", "fd20:0:0:1::/64"}),
		dualNode("gw", "g2", []string{"192.168.0.22/24", "fd00::22/64"}, []string{"10.20.2.0/24", "fd20:0:0:2::/64"}),
		dualNode("west", "w1", []string{"fd00::31/64"}, []string{"fd30:0:0:1::/64"}),
	}
	w, err := Build("kt6-", nodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Destroy)
	topo, p := plan(t, dualTopology, nodes)
	applyPlan(t, w, p)
	for _, from := range nodes {
		for _, to := range nodes {
			if from.Cluster == to.Cluster {
				continue
			}
			for i := range to.PodCIDRs {
				dst := globalAddrOf(topo, to, i)
				shared := false
				for _, c := range from.PodCIDRs {
					shared = shared || c.Addr().Is4() == dst.Is4()
				}
				if !shared {
					continue // west has no IPv4
				}
				if err := ping(w.PodNS(from.Cluster, from.Name), dst); err != nil {
					t.Errorf("ping %s/%s → %s/%s (%s): %v", from.Cluster, from.Name, to.Cluster, to.Name, dst, err)
				}
			}
		}
	}
	src, err := tcpSource(t, w.PodNS("west", "w1"), w.PodNS("gw", "g2"), PodIP(nodes[2].PodCIDRs[1]))
	if err != nil {
		t.Fatalf("tcp west → gw over IPv6: %v", err)
	}
	if want := globalAddrOf(topo, nodes[3], 0); src != want {
		t.Errorf("IPv6 receiver saw %s, want west's global %s", src, want)
	}
}

// syncBuffer is a strings.Builder safe to write from exec's goroutines while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAgentRepairsDrift runs the agent continuously in one node (with a long
// resync period, so repair comes from its netlink subscription), deletes one
// of its routes by hand, and waits for the route to be back; then it feeds a
// config the agent must refuse and checks the last good state stays.
func TestAgentRepairsDrift(t *testing.T) {
	requireRoot(t)
	nodes := []NodeSpec{worldNodes[0], worldNodes[4]}
	w, err := Build("ktr-", nodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Destroy)
	topo, p := plan(t, worldTopology, nodes)
	applyPlan(t, w, p) // both nodes configured once

	// Run e1's agent continuously from a file.
	data := configFile(t, p, "east", p.Cluster("east").Configs[0])
	file := filepath.Join(t.TempDir(), "e1.yaml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	agent := exec.Command("ip", "netns", "exec", w.NodeNS("east", "e1"), kosmosBin, "agent", "--node-config", file, "--resync", "30s", "--state-dir", t.TempDir())
	agent.Stdout, agent.Stderr = &log, &log
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agent.Process.Signal(os.Interrupt)
		_ = agent.Wait()
	})
	ns := w.NodeNS("east", "e1")
	route := func() string { out, _ := Run("ip", "-n", ns, "route", "show", "proto", "75"); return out }
	poll.Until(t, 10*time.Second, "the agent to start", func() bool { return strings.Contains(log.String(), "agent running") })

	before := route()
	victim := strings.Fields(strings.Split(strings.TrimSpace(before), "\n")[0])[0]
	if _, err := Run("ip", "-n", ns, "route", "del", victim); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "the deleted route "+victim+" to be repaired", func() bool { return route() == before })
	if err := ping(w.PodNS("east", "e1"), globalAddr(topo, nodes[1])); err != nil {
		t.Errorf("after repair: %v", err)
	}

	// A config the agent must refuse: the kernel keeps the last good state.
	bad := strings.Replace(string(data), "name: vx-bridge", "name: eth0", 1)
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run("ip", "-n", ns, "route", "del", victim); err != nil { // trigger a pass
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "the agent to refuse the bad config", func() bool { return strings.Contains(log.String(), "refused") })
	poll.Until(t, 5*time.Second, "the last good state to be restored", func() bool { return route() == before })
	if err := ping(w.PodNS("east", "e1"), globalAddr(topo, nodes[1])); err != nil {
		t.Errorf("after a refused config: %v", err)
	}
}
