package networld

import (
	"strings"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestWireGuardRotationWaitsForLivePeer: e1 rotates its key while g1's
// reconciler is down (g1's NodeConfig is withheld: g1 never learns e1's
// next key), with the rotation timeout shortened to 3 s. g1 is live on the
// current device, so e1 must not promote past it: it reports the wait
// (`WireGuard rotation waiting` naming gw/g1) and keeps its key; pings
// every 20 ms e1 ↔ g1 (and e1 ↔ w1, which did learn the next key) lose
// nothing. Once g1's plan arrives, the rotation completes.
func TestWireGuardRotationWaitsForLivePeer(t *testing.T) {
	requireRoot(t)
	nodes := []NodeSpec{
		node("east", "e1", "192.168.0.11/24", "10.10.1.0/24"),
		node("east", "e2", "192.168.0.12/24", "10.10.2.0/24"),
		node("gw", "g1", "192.168.0.21/24", "10.20.1.0/24"),
		node("west", "w1", "192.168.0.31/24", "10.30.1.0/24"),
	}
	const timeout = 3 * time.Second
	w := newWGWorld(t, "kww-", nodes, func(w *wgWorld) {
		w.withheld, w.agentArgs = map[string]bool{}, []string{"--wireguard-rotation-timeout", timeout.String()}
	})
	w.plan(t, "WireGuard")
	for _, n := range nodes {
		w.start(t, n)
	}
	e1, g1, w1 := nodes[0], nodes[2], nodes[3]
	pod := func(n NodeSpec) string { return w.PodNS(n.Cluster, n.Name) }
	pairs := [][2]NodeSpec{{e1, g1}, {g1, e1}, {e1, w1}, {w1, e1}}
	for _, pair := range pairs {
		poll.NoError(t, 20*time.Second, "ping "+pair[0].Name+" → "+pair[1].Name, func() error { return ping(pod(pair[0]), PodIP(pair[1].PodCIDRs[0])) })
	}

	const every, count = 20 * time.Millisecond, 600 // 12 s, four timeouts
	var ps []*wgPinger
	for _, pair := range pairs {
		ps = append(ps, startWGPinger(t, pod(pair[0]), PodIP(pair[1].PodCIDRs[0]).String(), count, every))
	}
	began := time.Now()
	out, err := InNS(w.NodeNS(e1.Cluster, e1.Name), kosmosBin, "agent", "--rotate-wireguard-key", "--state-dir", w.stateDir(e1))
	if err != nil {
		t.Fatal(err)
	}
	next := strings.TrimSpace(out)
	if len(next) != v1alpha1.WireGuardPublicKeyLength {
		t.Fatalf("next key %q", next)
	}
	poll.Until(t, 10*time.Second, "e1 to publish its next key", func() bool { return w.logLine(e1, "WireGuard rotation begun", next) })
	w.next = map[string]string{e1.Name: next}
	w.withheld[g1.Name] = true // g1's reconciler is down
	w.plan(t, "WireGuard")
	// Past the timeout e1 either reports the wait or (the fault guarded
	// against) promotes: the pings below count what that costs.
	poll.Until(t, 30*time.Second, "e1 to wait for g1 (or promote past it)", func() bool {
		return w.logLine(e1, "WireGuard rotation waiting", "gw/g1") || w.logLine(e1, "WireGuard key rotated")
	})
	waited := time.Since(began)
	for i, p := range ps {
		s := p.wait(t)
		t.Logf("ping %s → %s every %v while e1 waits: %d sent, %d lost %s, %d later than %v, slowest %v", pairs[i][0].Name, pairs[i][1].Name, every, s.sent, s.lost, clock(s.lostAt[:min(len(s.lostAt), 5)]), s.late, lateRTT, s.maxRTT.Round(time.Millisecond))
		var during int
		for _, at := range s.lostAt {
			if !at.Before(began) {
				during++
			}
		}
		if during > 0 {
			t.Errorf("ping %s → %s: %d lost while e1 waited for g1, want 0", pairs[i][0].Name, pairs[i][1].Name, during)
		}
	}
	held := time.Since(began)
	t.Logf("rotation timeout %v: e1 waited (or promoted) after %v; promoted by %v: %v", timeout, waited.Round(time.Millisecond), held.Round(time.Millisecond), w.logLine(e1, "WireGuard key rotated"))
	if held < 3*timeout {
		t.Fatalf("the pingers ended after %v, before three timeouts (%v): the wait is not shown", held, 3*timeout)
	}
	if w.logLine(e1, "WireGuard key rotated") {
		t.Fatalf("e1 promoted its next key past g1, which is live but does not hold it")
	}
	if !w.logLine(e1, "WireGuard rotation waiting", "gw/g1") {
		t.Errorf("e1 did not report that it waits for gw/g1")
	}
	if k := w.publicKey(t, e1); k != w.keys[e1.Name] {
		t.Errorf("e1's key file holds %s while it waits, want its current key %s", k, w.keys[e1.Name])
	}

	// g1's reconciler is back: the rotation completes.
	delete(w.withheld, g1.Name)
	w.plan(t, "WireGuard")
	poll.Until(t, 30*time.Second, "e1 to promote once g1 holds the next key", func() bool { return w.logLine(e1, "WireGuard key rotated", "publicKey=\""+next) })
	w.keys[e1.Name] = next
	delete(w.next, e1.Name)
	w.plan(t, "WireGuard")
	for _, n := range []NodeSpec{e1, g1, w1} {
		poll.Until(t, 30*time.Second, n.Name+"'s rotation device to go", func() bool {
			links, _ := Run("ip", "-n", w.NodeNS(n.Cluster, n.Name), "-o", "link")
			return !strings.Contains(links, ": vx-wg1:")
		})
	}
	for _, pair := range pairs {
		poll.NoError(t, 20*time.Second, "ping "+pair[0].Name+" → "+pair[1].Name+" after the rotation", func() error { return ping(pod(pair[0]), PodIP(pair[1].PodCIDRs[0])) })
	}
}
