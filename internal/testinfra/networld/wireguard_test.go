package networld

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/nodeagent"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// wgTopology: east (P2P) and gw (Gateway) ask for WireGuard, west and north
// do not. A pair is encrypted when either side asks, so only west–north
// stays in clear. %s is spec.network.encryption's value for east and gw
// (None turns encryption off everywhere).
const wgTopology = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: wg}
spec:
  network: {encryption: None}
  clusters:
    - {name: east, role: host, kubeconfig: {context: east}, network: {podCIDRs: [10.10.0.0/16], encryption: %[1]s}}
    - {name: gw, role: member, kubeconfig: {context: gw}, network: {mode: Gateway, podCIDRs: [10.20.0.0/16], encryption: %[1]s}}
    - {name: west, role: member, kubeconfig: {context: west}, network: {podCIDRs: [10.30.0.0/16]}}
    - {name: north, role: member, kubeconfig: {context: north}, network: {podCIDRs: [10.40.0.0/16]}}
`

var wgNodes = []NodeSpec{
	node("east", "e1", "192.168.0.11/24", "10.10.1.0/24"),
	node("east", "e2", "192.168.0.12/24", "10.10.2.0/24"),
	node("gw", "g1", "192.168.0.21/24", "10.20.1.0/24"),
	node("gw", "g2", "192.168.0.22/24", "10.20.2.0/24"),
	node("west", "w1", "192.168.0.31/24", "10.30.1.0/24"),
	node("north", "n1", "192.168.0.41/24", "10.40.1.0/24"),
}

// wgWorld is a world whose agents run continuously (the userspace
// WireGuard device lives in the agent), each from a file the test rewrites.
type wgWorld struct {
	*World
	dir    string
	topo   string            // topology, %[1]s the encryption of the asking clusters
	keys   map[string]string // node → public key
	next   map[string]string // node → next public key, while it rotates
	agents map[string]*exec.Cmd
	logs   map[string]*syncBuffer
	// withheld are nodes whose file plan leaves as it is (their
	// reconciler is down); agentArgs are added to every agent's flags.
	withheld  map[string]bool
	agentArgs []string
}

func (w *wgWorld) stateDir(n NodeSpec) string { return filepath.Join(w.dir, "state-"+n.Name) }
func (w *wgWorld) file(n NodeSpec) string     { return filepath.Join(w.dir, n.Name+".yaml") }

// publicKey asks the agent for the node's public key (making the pair).
func (w *wgWorld) publicKey(t testing.TB, n NodeSpec) string {
	t.Helper()
	out, err := InNS(w.NodeNS(n.Cluster, n.Name), kosmosBin, "agent", "--wireguard-public-key", "--state-dir", w.stateDir(n))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// plan computes the plan with the published keys as node facts and writes
// every node's file.
func (w *wgWorld) plan(t testing.TB, encryption string) {
	t.Helper()
	topo, err := schema.Load("wg.yaml", []byte(fmt.Sprintf(w.topo, encryption)))
	if err != nil {
		t.Fatal(err)
	}
	facts := netplan.Facts{}
	for _, n := range w.Nodes {
		f := facts[n.Cluster]
		nd := netplan.Node{Name: n.Name, Ready: true, PodCIDRs: n.PodCIDRs, WireGuardKey: w.keys[n.Name], WireGuardNextKey: w.next[n.Name]}
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
	for _, c := range p.Clusters {
		for _, nc := range c.Configs {
			if w.withheld[nc.Name] {
				continue
			}
			tmp := filepath.Join(w.dir, ".tmp")
			if err := os.WriteFile(tmp, configFile(t, p, c.Name, nc), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(w.dir, nc.Name+".yaml")); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func (w *wgWorld) start(t testing.TB, n NodeSpec) {
	t.Helper()
	log := &syncBuffer{}
	args := []string{"netns", "exec", w.NodeNS(n.Cluster, n.Name), kosmosBin, "agent",
		"--node-config", w.file(n), "--state-dir", w.stateDir(n), "--resync", "1s"}
	cmd := exec.Command("ip", append(args, w.agentArgs...)...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.agents[n.Name], w.logs[n.Name] = cmd, log
}

func (w *wgWorld) stop(n NodeSpec) {
	if cmd := w.agents[n.Name]; cmd != nil {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		delete(w.agents, n.Name)
	}
}

// capture reads every frame in the underlay bridge's namespace through a
// raw AF_PACKET socket and keeps those that carry a marker prefix, with
// their outer IPv4 addresses.
type capture struct {
	fd     int
	mu     sync.Mutex
	frames []capturedFrame
	done   chan struct{}
}

type capturedFrame struct {
	src, dst netip.Addr
	data     []byte
}

const markerPrefix = "KOSMOS-MARKER-"

func startCapture(t *testing.T, ns string) *capture {
	t.Helper()
	c := &capture{done: make(chan struct{})}
	var err error
	inNS(t, ns, func() {
		proto := int(htons(unix.ETH_P_ALL))
		// Unbound: every port of the bridge (frames forwarded between
		// ports never pass br0 itself).
		c.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, proto)
	})
	if err != nil {
		t.Fatalf("raw capture socket in %s: %v", ns, err)
	}
	tv := unix.Timeval{Usec: 200000}
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	go c.read()
	t.Cleanup(func() { close(c.done); unix.Close(c.fd) })
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *capture) read() {
	buf := make([]byte, 65536)
	for {
		select {
		case <-c.done:
			return
		default:
		}
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil || n < 34 || binary.BigEndian.Uint16(buf[12:14]) != 0x0800 {
			continue
		}
		if !bytes.Contains(buf[:n], []byte(markerPrefix)) {
			continue
		}
		src, _ := netip.AddrFromSlice(buf[26:30])
		dst, _ := netip.AddrFromSlice(buf[30:34])
		c.mu.Lock()
		c.frames = append(c.frames, capturedFrame{src: src, dst: dst, data: bytes.Clone(buf[:n])})
		c.mu.Unlock()
	}
}

// seen returns the outer source and destination of every captured frame
// that carries marker between nodes of different clusters (inside a
// cluster, pods talk over the CNI's underlay routes and a Gateway
// cluster's nodes reach their gateway over vx-local: not cross-cluster).
func (c *capture) seen(marker string, clusterOf map[netip.Addr]string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, f := range c.frames {
		if bytes.Contains(f.data, []byte(marker)) && clusterOf[f.src] != clusterOf[f.dst] {
			out = append(out, f.src.String()+"→"+f.dst.String())
		}
	}
	return out
}

// sendMarker sends marker by UDP from one pod to another and waits until
// the receiver got it (the packet really crossed).
func sendMarker(t *testing.T, fromNS, toNS string, to netip.Addr, marker string) error {
	t.Helper()
	var pc net.PacketConn
	var err error
	inNS(t, toNS, func() { pc, err = net.ListenPacket("udp4", ":7947") })
	if err != nil {
		return err
	}
	defer pc.Close()
	got := make(chan bool, 1)
	go func() {
		buf := make([]byte, 2048)
		for {
			_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				got <- false
				return
			}
			if string(buf[:n]) == marker {
				got <- true
				return
			}
		}
	}()
	var conn net.Conn
	inNS(t, fromNS, func() { conn, err = net.Dial("udp4", netip.AddrPortFrom(to, 7947).String()) })
	if err != nil {
		return err
	}
	defer conn.Close()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := conn.Write([]byte(marker)); err != nil {
			return err
		}
		select {
		case ok := <-got:
			if !ok {
				return fmt.Errorf("marker not received")
			}
			return nil
		case <-tick.C:
		}
	}
}

// kernelState reads what the agent owns in a node's namespace, as the
// agent reads it.
func kernelState(t testing.TB, ns string) nodeagent.State {
	t.Helper()
	leave, err := nodeagent.EnterNetNS(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	k, err := nodeagent.NewLinuxKernel()
	if err != nil {
		t.Fatal(err)
	}
	st, err := k.Read()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// inputCounts returns the packet counters of KOSMOS-INPUT's rules, by rule
// text as iptables -S prints it.
func inputCounts(t *testing.T, ns string) map[string]int {
	t.Helper()
	out, err := InNS(ns, "iptables", "-w", "-S", "KOSMOS-INPUT", "-v")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	// iptables -S -v prints "-c packets bytes" before the target.
	re := regexp.MustCompile(` -c (\d+) \d+`)
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if m := re.FindStringSubmatch(l); m != nil && strings.HasPrefix(l, "-A ") {
			counts[re.ReplaceAllString(l, "")], _ = strconv.Atoi(m[1])
		}
	}
	return counts
}

// injectVXLAN sends n clear UDP datagrams to a node's VXLAN port from
// another node's underlay address, as a peer outside the tunnel would: the
// socket is bound to eth0, so the sender's own rule into WireGuard (whose
// route names vx-wg) does not apply.
func injectVXLAN(t *testing.T, fromNS string, to netip.Addr, n int) {
	t.Helper()
	var conn net.Conn
	var err error
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), "eth0") }); err != nil {
			return err
		}
		return serr
	}}
	inNS(t, fromNS, func() { conn, err = d.Dial("udp4", netip.AddrPortFrom(to, v1alpha1.DefaultBridgePort).String()) })
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	frame := make([]byte, 8+14+20) // a VXLAN header (VNI 54) and the start of a frame
	frame[0], frame[6] = 0x08, v1alpha1.DefaultBridgeVNI
	for range n {
		if _, err := conn.Write(append(frame, markerPrefix+"injected"...)); err != nil {
			t.Fatal(err)
		}
	}
}

// newWGWorld builds a world of nodes (network namespaces under prefix)
// with wgTopology and each node's WireGuard key made; set, when not nil,
// adjusts the world first. At cleanup the agents stop, and their logs are
// printed when the test failed.
func newWGWorld(t *testing.T, prefix string, nodes []NodeSpec, set func(*wgWorld)) *wgWorld {
	t.Helper()
	base, err := Build(prefix, nodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(base.Destroy)
	w := &wgWorld{World: base, dir: t.TempDir(), topo: wgTopology, keys: map[string]string{}, agents: map[string]*exec.Cmd{}, logs: map[string]*syncBuffer{}}
	if set != nil {
		set(w)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			w.stop(n)
		}
		if t.Failed() {
			for _, n := range nodes {
				if l := w.logs[n.Name]; l != nil {
					t.Logf("agent %s:\n%s", n.Name, l.String())
				}
			}
		}
	})
	for _, n := range nodes {
		w.keys[n.Name] = w.publicKey(t, n)
	}
	return w
}

// TestWireGuardEncryption: east (P2P) and gw (Gateway) ask for WireGuard,
// west and north do not. Pings and TCP cross between pods of every pair of
// clusters; a raw capture on the underlay sees a marker payload in clear
// between west and north only (proving it would see it) and never on an
// encrypted pair; clear VXLAN from an encrypted peer's address is dropped;
// an agent restart keeps its key; turning encryption off and on again
// through the plan converges.
func TestWireGuardEncryption(t *testing.T) {
	requireRoot(t)
	start := time.Now()
	w := newWGWorld(t, "kwg-", wgNodes, nil)
	clusterOf := map[netip.Addr]string{}
	for _, n := range wgNodes {
		clusterOf[n.Underlay[0].Addr()] = n.Cluster
	}
	w.plan(t, "WireGuard")
	for _, n := range wgNodes {
		w.start(t, n)
	}
	pod := func(n NodeSpec) string { return w.PodNS(n.Cluster, n.Name) }
	podIP := func(n NodeSpec) netip.Addr { return PodIP(n.PodCIDRs[0]) }
	allPairsPing := func(what string) {
		t.Helper()
		for _, from := range wgNodes {
			for _, to := range wgNodes {
				if from.Cluster == to.Cluster {
					continue
				}
				poll.NoError(t, 20*time.Second, fmt.Sprintf("%s: ping %s → %s", what, from.Name, to.Name), func() error { return ping(pod(from), podIP(to)) })
			}
		}
	}
	allPairsPing("encrypted")
	t.Logf("world built, agents up, every pair pinging after %v", time.Since(start).Round(time.Millisecond))

	// The WireGuard device exists on every edge node, in userspace.
	for _, n := range wgNodes {
		links, _ := Run("ip", "-n", w.NodeNS(n.Cluster, n.Name), "-o", "link")
		edge := n.Name != "g2"
		if has := strings.Contains(links, ": "+v1alpha1.DeviceWireGuard+":"); has != edge {
			t.Errorf("%s: WireGuard device present %v, want %v", n.Name, has, edge)
		}
		// This kernel has no WireGuard module: the agent falls back to
		// wireguard-go and says so.
		if edge && !strings.Contains(w.logs[n.Name].String(), "path=userspace") {
			t.Errorf("%s: the agent does not report the userspace path", n.Name)
		}
	}

	// TCP between one pod of each pair of clusters, both ways.
	pairs := [][2]NodeSpec{{wgNodes[0], wgNodes[3]}, {wgNodes[1], wgNodes[4]}, {wgNodes[5], wgNodes[0]}, {wgNodes[3], wgNodes[4]}, {wgNodes[2], wgNodes[5]}, {wgNodes[4], wgNodes[5]}}
	for _, p := range pairs {
		for _, dir := range [][2]NodeSpec{p, {p[1], p[0]}} {
			if src, err := tcpSource(t, pod(dir[0]), pod(dir[1]), podIP(dir[1])); err != nil || src != podIP(dir[0]) {
				t.Errorf("tcp %s → %s: source %s, %v", dir[0].Name, dir[1].Name, src, err)
			}
		}
	}

	// The capture: markers delivered over every pair; seen in clear on the
	// west–north pair only.
	capt := startCapture(t, w.underlayNS())
	checkMarkers := func(what string, clearPairs map[[2]string]bool) {
		t.Helper()
		for i, p := range pairs {
			for j, dir := range [][2]NodeSpec{p, {p[1], p[0]}} {
				marker := fmt.Sprintf("%s%s-%d-%d-%d", markerPrefix, what, i, j, time.Now().UnixNano())
				if err := sendMarker(t, pod(dir[0]), pod(dir[1]), podIP(dir[1]), marker); err != nil {
					t.Errorf("%s: marker %s → %s: %v", what, dir[0].Name, dir[1].Name, err)
					continue
				}
				inClear := clearPairs[[2]string{dir[0].Cluster, dir[1].Cluster}] || clearPairs[[2]string{dir[1].Cluster, dir[0].Cluster}]
				if inClear {
					poll.Until(t, 5*time.Second, fmt.Sprintf("%s: the capture to see %s → %s in clear", what, dir[0].Name, dir[1].Name),
						func() bool { return len(capt.seen(marker, clusterOf)) > 0 })
					continue
				}
				// Flush: a later clear marker seen means this one was read.
				flush := fmt.Sprintf("%sflush-%d", markerPrefix, time.Now().UnixNano())
				if err := sendMarker(t, pod(wgNodes[4]), pod(wgNodes[5]), podIP(wgNodes[5]), flush); err != nil {
					t.Errorf("%s: flush marker w1 → n1: %v", what, err)
					continue
				}
				poll.Until(t, 5*time.Second, "the capture to catch up", func() bool { return len(capt.seen(flush, clusterOf)) > 0 })
				if s := capt.seen(marker, clusterOf); len(s) > 0 {
					t.Errorf("%s: marker %s → %s seen in clear on the underlay: %v", what, dir[0].Name, dir[1].Name, s)
				}
			}
		}
	}
	checkMarkers("encrypted", map[[2]string]bool{{"west", "north"}: true})

	// Clear VXLAN from an encrypted peer's underlay address (west towards
	// east) is dropped by KOSMOS-INPUT; from a clear peer (west towards
	// north) it is let through.
	e1, n1 := w.NodeNS("east", "e1"), w.NodeNS("north", "n1")
	drop := fmt.Sprintf("-A KOSMOS-INPUT -p udp -m udp --dport %d -j DROP", v1alpha1.DefaultBridgePort)
	accept := fmt.Sprintf("-A KOSMOS-INPUT -p udp -m udp --dport %d -m set --match-set KOSMOS-PEER4-%d src -j RETURN", v1alpha1.DefaultBridgePort, v1alpha1.DefaultBridgePort)
	viaWG := fmt.Sprintf("-A KOSMOS-INPUT -i %s -p udp -m udp --dport %d -m set --match-set KOSMOS-WGPEER4-%d src -j RETURN", v1alpha1.DeviceWireGuard, v1alpha1.DefaultBridgePort, v1alpha1.DefaultBridgePort)
	beforeE1, beforeN1 := inputCounts(t, e1), inputCounts(t, n1)
	if _, ok := beforeE1[viaWG]; !ok {
		t.Errorf("e1's KOSMOS-INPUT lacks %q: %v", viaWG, beforeE1)
	}
	// w1 is among e1's encrypted peers only, and among n1's clear ones.
	peerSets := map[string][]string{}
	for _, ns := range []string{e1, n1} {
		for _, set := range kernelState(t, ns).Sets {
			if slices.Contains(set.Members, "192.168.0.31") {
				peerSets[ns] = append(peerSets[ns], set.Name)
			}
		}
	}
	if want := fmt.Sprintf("KOSMOS-WGPEER4-%d", v1alpha1.DefaultBridgePort); !slices.Equal(peerSets[e1], []string{want}) {
		t.Errorf("e1 holds w1's address in %v, want only %s", peerSets[e1], want)
	}
	if want := fmt.Sprintf("KOSMOS-PEER4-%d", v1alpha1.DefaultBridgePort); !slices.Equal(peerSets[n1], []string{want}) {
		t.Errorf("n1 holds w1's address in %v, want only %s", peerSets[n1], want)
	}
	injectVXLAN(t, w.NodeNS("west", "w1"), wgNodes[0].Underlay[0].Addr(), 5)
	injectVXLAN(t, w.NodeNS("west", "w1"), wgNodes[5].Underlay[0].Addr(), 5)
	poll.Until(t, 5*time.Second, "e1 to drop the 5 clear VXLAN datagrams from w1", func() bool { return inputCounts(t, e1)[drop]-beforeE1[drop] >= 5 })
	poll.Until(t, 5*time.Second, "n1 to let the 5 datagrams from w1 through", func() bool { return inputCounts(t, n1)[accept]-beforeN1[accept] >= 5 })
	if got := inputCounts(t, e1)[viaWG] - beforeE1[viaWG]; got >= 5 {
		t.Errorf("the clear datagrams were counted as arriving through WireGuard (%d)", got)
	}

	// An agent restart keeps its key; traffic resumes.
	keyBefore := w.keys["e1"]
	pinger := exec.Command("ip", "netns", "exec", pod(wgNodes[0]), "ping", "-q", "-c", "100", "-i", "0.05", "-W", "1", podIP(wgNodes[4]).String())
	var pingOut syncBuffer
	pinger.Stdout, pinger.Stderr = &pingOut, &pingOut
	if err := pinger.Start(); err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	w.stop(wgNodes[0])
	w.start(t, wgNodes[0])
	poll.NoError(t, 20*time.Second, "e1 → w1 after e1's agent restarted", func() error { return ping(pod(wgNodes[0]), podIP(wgNodes[4])) })
	t.Logf("e1's agent restarted; traffic back after %v", time.Since(restart).Round(time.Millisecond))
	_ = pinger.Wait()
	t.Logf("continuous ping e1 → w1 across the restart: %s", lastLine(pingOut.String(), "packet loss"))
	if k := w.publicKey(t, wgNodes[0]); k != keyBefore {
		t.Errorf("e1's key changed across a restart: %s → %s", keyBefore, k)
	}
	if !strings.Contains(w.logs["e1"].String(), keyBefore) {
		t.Error("the restarted agent does not report the same public key")
	}

	// Key rotation under a running TCP stream (e1's pod → w1's pod): the
	// agent takes up the new key, the plan carries it to the peers, and
	// the stream goes on.
	stream := startWGStream(t, pod(wgNodes[0]), pod(wgNodes[4]), podIP(wgNodes[4]))
	poll.Until(t, 10*time.Second, "the stream to flow", func() bool { return stream.received() > 64<<10 })
	rotated := time.Now()
	w.rotate(t, wgNodes[0], "WireGuard")
	mark := stream.received()
	poll.Until(t, 30*time.Second, "the stream to go on after the rotation", func() bool { return stream.received() > mark+256<<10 })
	t.Logf("key rotated under a TCP stream: the stream went on %v after the rotation; %d KiB in all", time.Since(rotated).Round(time.Millisecond), stream.received()>>10)
	if err := stream.stop(); err != nil {
		t.Errorf("the TCP stream broke across the key rotation: %v", err)
	}
	allPairsPing("after rotation")

	// Encryption off through the plan: converges to clear everywhere, the
	// device, rule and table gone; then on again.
	w.plan(t, "None")
	for _, n := range wgNodes {
		ns := w.NodeNS(n.Cluster, n.Name)
		poll.Until(t, 20*time.Second, n.Name+" to drop its WireGuard device, rule and table", func() bool {
			links, _ := Run("ip", "-n", ns, "-o", "link")
			rules, _ := Run("ip", "-n", ns, "rule")
			routes, err := Run("ip", "-n", ns, "route", "show", "table", "4876")
			noTable := err != nil && strings.Contains(routes, "does not exist") || err == nil && strings.TrimSpace(routes) == ""
			return !strings.Contains(links, ": "+v1alpha1.DeviceWireGuard+":") && !strings.Contains(rules, "4876") && noTable
		})
	}
	allPairsPing("clear")
	everyPair := map[[2]string]bool{}
	for _, a := range []string{"east", "gw", "west", "north"} {
		for _, b := range []string{"east", "gw", "west", "north"} {
			everyPair[[2]string{a, b}] = true
		}
	}
	checkMarkers("clear", everyPair)

	w.plan(t, "WireGuard")
	for _, n := range wgNodes {
		if n.Name == "g2" {
			continue
		}
		ns := w.NodeNS(n.Cluster, n.Name)
		poll.Until(t, 20*time.Second, n.Name+" to hold its WireGuard device again", func() bool {
			links, _ := Run("ip", "-n", ns, "-o", "link")
			return strings.Contains(links, ": "+v1alpha1.DeviceWireGuard+":")
		})
	}
	allPairsPing("encrypted again")
	checkMarkers("again", map[[2]string]bool{{"west", "north"}: true})
	t.Logf("whole test: %v", time.Since(start).Round(time.Millisecond))
}

func lastLine(s, containing string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, containing) {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(s)
}

// stream is a TCP connection from one pod to another that a writer keeps
// busy; the reader counts what arrives.
type stream struct {
	mu    sync.Mutex
	n     int
	err   error
	conn  net.Conn
	ln    net.Listener
	done  chan struct{}
	wrote chan error
}

func (s *stream) received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func startWGStream(t *testing.T, fromNS, toNS string, to netip.Addr) *stream {
	t.Helper()
	s := &stream{done: make(chan struct{}), wrote: make(chan error, 1)}
	var err error
	inNS(t, toNS, func() { s.ln, err = net.Listen("tcp", ":7948") })
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			s.mu.Lock()
			s.n += n
			if err != nil && s.err == nil {
				s.err = err
			}
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	inNS(t, fromNS, func() { s.conn, err = net.DialTimeout("tcp", netip.AddrPortFrom(to, 7948).String(), 5*time.Second) })
	if err != nil {
		s.ln.Close()
		t.Fatal(err)
	}
	go func() {
		chunk := make([]byte, 4096)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				s.wrote <- nil
				return
			case <-tick.C:
			}
			_ = s.conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
			if _, err := s.conn.Write(chunk); err != nil {
				s.wrote <- err
				return
			}
		}
	}()
	t.Cleanup(func() { s.conn.Close(); s.ln.Close() })
	return s
}

// stop ends the writer and returns the first error of either side.
func (s *stream) stop() error {
	close(s.done)
	err := <-s.wrote
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		err = s.err
	}
	return err
}

const wgDualTopology = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: wg6}
spec:
  network: {encryption: %[1]s}
  clusters:
    - {name: east, role: host, kubeconfig: {context: east}, network: {ipFamily: DualStack, podCIDRs: [10.10.0.0/16, "fd10::/56"]}}
    - {name: gw, role: member, kubeconfig: {context: gw}, network: {ipFamily: DualStack, mode: Gateway, podCIDRs: [10.20.0.0/16, "fd20::/56"]}}
`

// TestWireGuardDualStack: both families of a dual-stack pair (P2P and
// Gateway) cross inside one WireGuard peer per node: pings of both
// families, the IPv6 policy rule, and IPv6 VXLAN counted as arriving
// through the WireGuard device.
func TestWireGuardDualStack(t *testing.T) {
	requireRoot(t)
	nodes := []NodeSpec{
		dualNode("east", "e1", []string{"192.168.0.11/24", "fd00::11/64"}, []string{"10.10.1.0/24", "fd10:0:0:1::/64"}),
		dualNode("gw", "g1", []string{"192.168.0.21/24", "fd00::21/64"}, []string{"10.20.1.0/24", "fd20:0:0:1::/64"}),
		dualNode("gw", "g2", []string{"192.168.0.22/24", "fd00::22/64"}, []string{"10.20.2.0/24", "fd20:0:0:2::/64"}),
	}
	base, err := Build("kw6-", nodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(base.Destroy)
	w := &wgWorld{World: base, dir: t.TempDir(), topo: wgDualTopology, keys: map[string]string{}, agents: map[string]*exec.Cmd{}, logs: map[string]*syncBuffer{}}
	t.Cleanup(func() {
		for _, n := range nodes {
			w.stop(n)
		}
	})
	for _, n := range nodes {
		w.keys[n.Name] = w.publicKey(t, n)
	}
	w.plan(t, "WireGuard")
	for _, n := range nodes {
		w.start(t, n)
	}
	for _, from := range nodes {
		for _, to := range nodes {
			if from.Cluster == to.Cluster {
				continue
			}
			for i := range to.PodCIDRs {
				dst := PodIP(to.PodCIDRs[i])
				poll.NoError(t, 20*time.Second, fmt.Sprintf("ping %s → %s", from.Name, dst), func() error { return ping(w.PodNS(from.Cluster, from.Name), dst) })
			}
		}
	}
	e1 := w.NodeNS("east", "e1")
	if rules, _ := Run("ip", "-n", e1, "-6", "rule"); !strings.Contains(rules, fmt.Sprintf("ipproto udp dport %d lookup 4876", v1alpha1.DefaultBridge6Port)) {
		t.Errorf("no IPv6 rule into the WireGuard table:\n%s", rules)
	}
	out, err := InNS(e1, "ip6tables", "-w", "-S", "KOSMOS-INPUT", "-v")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`-i vx-wg -p udp -m udp --dport 4866 -m set --match-set KOSMOS-WGPEER6-4866 src -c (\d+) `)
	if m := re.FindStringSubmatch(out); m == nil || m[1] == "0" {
		t.Errorf("IPv6 VXLAN from g1 not counted through the WireGuard device:\n%s", out)
	}
}
