package networld

import (
	"strings"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/testinfra/poll"
)

// TestWireGuardNextKeyWatchedByAgent: the real agent, its resync an hour
// away, takes up `kosmos agent --rotate-wireguard-key` at once (its state
// directory watch wakes the pass): it logs the rotation's beginning with
// the next key within moments, not at its next resync.
func TestWireGuardNextKeyWatchedByAgent(t *testing.T) {
	requireRoot(t)
	nodes := []NodeSpec{
		node("east", "e1", "192.168.0.11/24", "10.10.1.0/24"),
		node("west", "w1", "192.168.0.31/24", "10.30.1.0/24"),
	}
	w := newWGWorld(t, "kwn-", nodes, func(w *wgWorld) { w.agentArgs = []string{"--resync", "1h"} })
	w.plan(t, "WireGuard")
	for _, n := range nodes {
		w.start(t, n)
	}
	e1, w1 := nodes[0], nodes[1]
	poll.NoError(t, 20*time.Second, "ping e1 → w1", func() error { return ping(w.PodNS(e1.Cluster, e1.Name), PodIP(w1.PodCIDRs[0])) })
	began := time.Now()
	out, err := InNS(w.NodeNS(e1.Cluster, e1.Name), kosmosBin, "agent", "--rotate-wireguard-key", "--state-dir", w.stateDir(e1))
	if err != nil {
		t.Fatal(err)
	}
	next := strings.TrimSpace(out)
	took := poll.Until(t, 10*time.Second, "e1's agent to publish its next key", func() bool { return w.logLine(e1, "WireGuard rotation begun", next) })
	t.Logf("e1's agent (resync 1h) took up the next key %v after --rotate-wireguard-key returned (the command itself took %v)", took.Round(time.Millisecond), (time.Since(began) - took).Round(time.Millisecond))
	// ~1 s is what the issue asks; twice that tolerates a loaded machine.
	if took > 2*time.Second {
		t.Errorf("the next key was taken up after %v, want within ~1 s", took)
	}
}
