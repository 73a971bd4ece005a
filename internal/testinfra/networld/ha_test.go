package networld

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// The gateway HA world: east (P2P, one node), gw (Gateway, three
// candidates g1..g3 and a node g4 behind them, GlobalCIDR mapped) and gw2
// (Gateway, one gateway h1 and a node h2 behind it).
const haTopology = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: ha}
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
        gateway: {replicas: 3}
        podCIDRs: [10.244.0.0/16]
        globalCIDRs: {10.244.0.0/16: 100.65.0.0/16}
    - name: gw2
      role: member
      kubeconfig: {context: gw2}
      network:
        mode: Gateway
        podCIDRs: [10.30.0.0/16]
`

var haNodes = []NodeSpec{
	node("east", "e1", "192.168.5.11/24", "10.10.1.0/24"),
	node("gw", "g1", "192.168.5.21/24", "10.244.1.0/24"),
	node("gw", "g2", "192.168.5.22/24", "10.244.2.0/24"),
	node("gw", "g3", "192.168.5.23/24", "10.244.3.0/24"),
	node("gw", "g4", "192.168.5.24/24", "10.244.4.0/24"),
	node("gw2", "h1", "192.168.5.31/24", "10.30.1.0/24"),
	node("gw2", "h2", "192.168.5.32/24", "10.30.2.0/24"),
}

// haHold is the failback hold time the test runs the agents with.
const haHold = time.Second

// haAgent is one agent running from a file inside its node's namespace.
type haAgent struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	file string
	ns   string
}

func startHAAgent(t testing.TB, ns, file string) *haAgent {
	t.Helper()
	return startHAAgentHold(t, ns, file, haHold)
}

func startHAAgentHold(t testing.TB, ns, file string, hold time.Duration) *haAgent {
	t.Helper()
	a := &haAgent{log: &syncBuffer{}, file: file, ns: ns}
	// The links here have sub-millisecond round trips: a 300 ms probe
	// timeout (default 500 ms) leaves the ≤ 1 s gap bound a margin on a
	// loaded machine.
	a.cmd = exec.Command("ip", "netns", "exec", ns, kosmosBin, "agent", "--node-config", file, "--resync", "30s",
		"--probe-interval", "100ms", "--probe-timeout", "300ms", "--probe-down", "3", "--probe-up", "3", "--failback-hold", hold.String())
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.kill)
	return a
}

func (a *haAgent) kill() {
	if a.cmd.ProcessState == nil {
		_ = a.cmd.Process.Kill()
		_ = a.cmd.Wait()
	}
}

// haWorld builds the world, writes every node's config file and starts
// every agent.
func haWorld(t testing.TB, prefix string) (*World, *v1alpha1.KosmosTopology, *netplan.Plan, map[string]*haAgent) {
	t.Helper()
	w, err := Build(prefix, haNodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Destroy)
	topo, p := plan(t, haTopology, haNodes)
	if cp := p.Cluster("gw"); cp.Gateway != "g1" || strings.Join(cp.Standby, ",") != "g2,g3" {
		t.Fatalf("gw candidates %s then %v, want g1 then g2,g3", cp.Gateway, cp.Standby)
	}
	dir := t.TempDir()
	agents := map[string]*haAgent{}
	for _, c := range p.Clusters {
		for _, nc := range c.Configs {
			f := filepath.Join(dir, c.Name+"-"+nc.Name+".yaml")
			if err := os.WriteFile(f, configFile(t, p, c.Name, nc), 0o644); err != nil {
				t.Fatal(err)
			}
			agents[nc.Name] = startHAAgent(t, w.NodeNS(c.Name, nc.Name), f)
		}
	}
	return w, topo, p, agents
}

// seqPing is a continuous ping every 100 ms that records which echo
// requests were answered.
type seqPing struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	name string
}

func startSeqPing(t testing.TB, name, ns string, to netip.Addr) *seqPing {
	t.Helper()
	p := &seqPing{out: &syncBuffer{}, name: name}
	p.cmd = exec.Command("ip", "netns", "exec", ns, "ping", "-i", "0.1", "-W", "1", to.String())
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

var seqRE = regexp.MustCompile(`icmp_seq=(\d+)`)

func (p *seqPing) replies() int { return len(seqRE.FindAllString(p.out.String(), -1)) }

// loss is what a ping lost: the requests sent and unanswered, and the
// longest run of consecutive unanswered ones (the gap, in intervals).
type loss struct {
	sent, lost, runs, longest int
}

func (l loss) String() string {
	return fmt.Sprintf("%d sent, %d lost in %d gap(s), longest gap %d × 100 ms", l.sent, l.lost, l.runs, l.longest)
}

// stop ends the ping and counts what it lost.
func (p *seqPing) stop(t testing.TB) loss {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	_ = p.cmd.Wait()
	m := regexp.MustCompile(`(\d+) packets transmitted`).FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("%s: no ping summary:\n%s", p.name, p.out.String())
	}
	sent, _ := strconv.Atoi(m[1])
	got := map[int]bool{}
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
	for sc.Scan() {
		if m := seqRE.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), " bytes from ") {
			n, _ := strconv.Atoi(m[1])
			got[n] = true
		}
	}
	l := loss{sent: sent}
	run := 0
	// The last request may still be in flight when the ping is stopped.
	for seq := 1; seq < sent; seq++ {
		if got[seq] {
			run = 0
			continue
		}
		l.lost++
		if run == 0 {
			l.runs++
		}
		run++
		l.longest = max(l.longest, run)
	}
	return l
}

// routeVia is the next hop of a node's route to dst.
func routeVia(ns, dst string) string {
	out, _ := Run("ip", "-n", ns, "route", "show", dst)
	f := strings.Fields(out)
	for i := range f {
		if f[i] == "via" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// tcpStream is a TCP connection between two pods that carries a few bytes
// every 20 ms; the receiver counts them and notes the source it saw.
type tcpStream struct {
	name     string
	received atomic.Int64
	src      netip.Addr
	failed   atomic.Value // error of the sender
	done     chan struct{}
}

func startStream(t *testing.T, name, fromNS, toNS string, to netip.Addr, port uint16) *tcpStream {
	t.Helper()
	s := &tcpStream{name: name, done: make(chan struct{})}
	var ln net.Listener
	var err error
	inNS(t, toNS, func() { ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port)) })
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	var conn net.Conn
	inNS(t, fromNS, func() { conn, err = net.DialTimeout("tcp", netip.AddrPortFrom(to, port).String(), 3*time.Second) })
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	rc, ok := <-accepted
	if !ok {
		t.Fatalf("%s: accept failed", name)
	}
	s.src = rc.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := rc.Read(buf)
			s.received.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		msg := make([]byte, 100)
		for {
			select {
			case <-s.done:
				return
			case <-tick.C:
				if _, err := conn.Write(msg); err != nil {
					s.failed.Store(err)
					return
				}
			}
		}
	}()
	t.Cleanup(func() { close(s.done); conn.Close(); rc.Close() })
	return s
}

// flows waits until the stream carried 2 KB more than now.
func (s *tcpStream) flows(t *testing.T, phase string) {
	t.Helper()
	want := s.received.Load() + 2000
	poll.Until(t, 10*time.Second, s.name+" to carry on after "+phase, func() bool { return s.received.Load() >= want || s.failed.Load() != nil })
	if err, _ := s.failed.Load().(error); err != nil {
		t.Fatalf("%s after %s: the sender failed: %v", s.name, phase, err)
	}
}

// TestGatewayFailover: gw has three hot gateway candidates; pods of east
// (P2P) and of gw2 (behind its own gateway) ping a pod behind gw's gateway
// every 100 ms while the active gateway's underlay link goes down and up,
// its agent dies, and two candidates go down in a row. The agents notice
// through their probes over the tunnels alone: no API server is involved.
func TestGatewayFailover(t *testing.T) {
	requireRoot(t)
	w, topo, _, agents := haWorld(t, "kha-")
	target := globalAddr(topo, haNodes[4]) // g4's pod, behind the gateway
	e1, h1, g4 := w.NodeNS("east", "e1"), w.NodeNS("gw2", "h1"), w.NodeNS("gw", "g4")
	bridge := func(i int) string { return "220.168.5." + strconv.Itoa(21+i) } // g1..g3 on vx-bridge
	local := func(i int) string { return "210.168.5." + strconv.Itoa(21+i) }  // g1..g3 on vx-local
	remote := "100.65.0.0/16"
	// on says every node that sends to gw goes through candidate i.
	on := func(i int) func() bool {
		return func() bool {
			return routeVia(e1, remote) == bridge(i) && routeVia(h1, remote) == bridge(i) && routeVia(g4, "10.10.0.0/16") == local(i)
		}
	}
	poll.NoError(t, 20*time.Second, "east and gw2 reach the pod behind gw", func() error {
		if err := ping(w.PodNS("east", "e1"), target); err != nil {
			return err
		}
		return ping(w.PodNS("gw2", "h2"), target)
	})
	poll.Until(t, 5*time.Second, "every sender routes through g1", on(0))
	// The standbys are hot: east holds neighbour entries for all three.
	neigh, _ := Run("ip", "-n", e1, "neigh", "show", "dev", "vx-bridge")
	for i := range 3 {
		if !strings.Contains(neigh, bridge(i)) {
			t.Errorf("east has no neighbour entry for candidate g%d:\n%s", i+1, neigh)
		}
	}
	// A TCP connection from the pod behind gw: the receiver sees its
	// global address, through whichever gateway.
	tcpFrom := func(phase string) {
		src, err := tcpSource(t, w.PodNS("gw", "g4"), w.PodNS("east", "e1"), PodIP(haNodes[0].PodCIDRs[0]))
		if err != nil {
			t.Errorf("%s: tcp g4 → e1: %v", phase, err)
		} else if src != target {
			t.Errorf("%s: tcp g4 → e1: receiver saw %s, want the global %s", phase, src, target)
		}
	}
	tcpFrom("through g1")
	// A standby's own pod sends through the active gateway, where the
	// replies come back: its GlobalCIDR NAT stays on one node.
	standbyPod := globalAddr(topo, haNodes[2])
	if src, err := tcpSource(t, w.PodNS("gw", "g2"), w.PodNS("east", "e1"), PodIP(haNodes[0].PodCIDRs[0])); err != nil || src != standbyPod {
		t.Errorf("tcp from the standby g2's pod to e1: source %s, %v; want %s", src, err, standbyPod)
	}
	if err := ping(w.PodNS("gw", "g2"), PodIP(haNodes[0].PodCIDRs[0])); err != nil {
		t.Errorf("ping from the standby g2's pod to e1: %v", err)
	}
	// Two long TCP streams through gw's GlobalCIDR NAT, one each way, live
	// across every failover below: the receivers keep seeing the same
	// (global) addresses, and bytes keep flowing.
	out := startStream(t, "stream g4 → e1", w.PodNS("gw", "g4"), w.PodNS("east", "e1"), PodIP(haNodes[0].PodCIDRs[0]), 7950)
	in := startStream(t, "stream e1 → g4", w.PodNS("east", "e1"), w.PodNS("gw", "g4"), target, 7951)
	if out.src != target {
		t.Errorf("stream g4 → e1: receiver saw %s, want the global %s", out.src, target)
	}
	if want := PodIP(haNodes[0].PodCIDRs[0]); in.src != want {
		t.Errorf("stream e1 → g4: receiver saw %s, want %s", in.src, want)
	}
	streams := func(phase string) {
		out.flows(t, phase)
		in.flows(t, phase)
	}

	pings := func() []*seqPing {
		return []*seqPing{
			startSeqPing(t, "east/e1", w.PodNS("east", "e1"), target),
			startSeqPing(t, "gw2/h2", w.PodNS("gw2", "h2"), target),
		}
	}
	settle := func(ps []*seqPing) {
		for _, p := range ps {
			want := p.replies() + 10
			poll.Until(t, 10*time.Second, p.name+": 10 more replies", func() bool { return p.replies() >= want })
		}
	}
	stop := func(phase string, ps []*seqPing) []loss {
		var out []loss
		for _, p := range ps {
			l := p.stop(t)
			t.Logf("%s: %s: %s", phase, p.name, l)
			out = append(out, l)
		}
		return out
	}
	link := func(i int, state string) {
		if _, err := Run("ip", "-n", w.underlayNS(), "link", "set", "u"+strconv.Itoa(1+i), state); err != nil {
			t.Fatal(err)
		}
	}

	// 1. The active gateway's underlay link goes down.
	ps := pings()
	settle(ps)
	link(0, "down")
	took := poll.Until(t, 5*time.Second, "every sender to move to g2", on(1))
	settle(ps)
	for _, l := range stop("g1 link down", ps) {
		if l.longest > 10 {
			t.Errorf("g1 link down: traffic stopped for %d × 100 ms, want at most 1 s", l.longest)
		}
	}
	t.Logf("g1 link down: routes moved after %v", took.Round(time.Millisecond))
	tcpFrom("through g2")
	streams("the move to g2")

	// 2. It comes back: traffic returns to it after the hold, with at most
	// one short gap.
	ps = pings()
	link(0, "up")
	back := poll.Until(t, haHold+5*time.Second, "every sender to move back to g1", on(0))
	if back < haHold {
		t.Errorf("moved back to g1 after %v, before the hold of %v", back, haHold)
	}
	settle(ps)
	for _, l := range stop("g1 link up", ps) {
		if l.runs > 1 || l.longest > 3 {
			t.Errorf("g1 back: %s, want at most one short gap", l)
		}
	}

	// 3. Only the active gateway's agent dies: its kernel state stays, the
	// others move to the hot standby; no packet is lost.
	ps = pings()
	settle(ps)
	agents["g1"].kill()
	poll.Until(t, 5*time.Second, "every sender to move to g2 when g1's agent died", on(1))
	settle(ps)
	for _, l := range stop("g1 agent killed", ps) {
		if l.lost > 0 {
			t.Errorf("g1 agent killed: %s, want no loss", l)
		}
	}
	agents["g1"] = startHAAgent(t, agents["g1"].ns, agents["g1"].file)
	poll.Until(t, haHold+10*time.Second, "every sender back on g1 after its agent restarted", on(0))

	// 4. Two candidates go down in a row: traffic ends on the third.
	ps = pings()
	settle(ps)
	link(0, "down")
	poll.Until(t, 5*time.Second, "every sender to move to g2", on(1))
	settle(ps)
	link(1, "down")
	poll.Until(t, 5*time.Second, "every sender to move to g3", on(2))
	settle(ps)
	for _, l := range stop("g1 then g2 down", ps) {
		if l.longest > 10 || l.runs > 2 {
			t.Errorf("g1 then g2 down: %s, want two gaps of at most 1 s", l)
		}
	}
	tcpFrom("through g3")
	streams("the moves to g2 and g3")
	for _, name := range []string{"e1", "h1", "g4"} {
		if !strings.Contains(agents[name].log.String(), "gateway failover") {
			t.Errorf("%s logged no failover:\n%s", name, agents[name].log.String())
		}
	}
}
