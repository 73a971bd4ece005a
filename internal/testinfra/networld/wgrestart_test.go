package networld

import (
	"strings"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/testinfra/poll"
)

// TestWireGuardUserspaceRestartGap measures how long traffic stops across
// an agent restart on the userspace path (issue 21: "no lost ping beyond
// the restart itself"): pings every 20 ms both ways between e1's pod
// (east, WireGuard) and w1's pod while e1's agent is stopped and started
// again. It asserts only that traffic comes back both ways and that no
// ping is lost outside the restart; the figures (pings lost, the gap they
// span, and where the time goes in the agent) are logged.
func TestWireGuardUserspaceRestartGap(t *testing.T) {
	requireRoot(t)
	nodes := []NodeSpec{
		node("east", "e1", "192.168.0.11/24", "10.10.1.0/24"),
		node("west", "w1", "192.168.0.31/24", "10.30.1.0/24"),
	}
	w := newWGWorld(t, "kwx-", nodes, nil)
	w.plan(t, "WireGuard")
	for _, n := range nodes {
		w.start(t, n)
	}
	e1, w1 := nodes[0], nodes[1]
	pod := func(n NodeSpec) string { return w.PodNS(n.Cluster, n.Name) }
	for _, pair := range [][2]NodeSpec{{e1, w1}, {w1, e1}} {
		poll.NoError(t, 20*time.Second, "ping "+pair[0].Name+" → "+pair[1].Name, func() error { return ping(pod(pair[0]), PodIP(pair[1].PodCIDRs[0])) })
	}
	const every, count = 20 * time.Millisecond, 300 // 6 s
	ps := []*wgPinger{
		startWGPinger(t, pod(e1), PodIP(w1.PodCIDRs[0]).String(), count, every),
		startWGPinger(t, pod(w1), PodIP(e1.PodCIDRs[0]).String(), count, every),
	}
	names := []string{"e1→w1", "w1→e1"}
	// A second of pings first, then the restart.
	poll.Until(t, 10*time.Second, "the pingers to run a second", func() bool { return countReplies(ps[0]) >= 50 })
	stopAt := time.Now()
	w.stop(e1)
	stopped := time.Now()
	w.start(t, e1)
	poll.Until(t, 10*time.Second, "e1's new agent to make its device", func() bool { return w.logLine(e1, "WireGuard device created") })
	for i, p := range ps {
		s := p.wait(t)
		var span time.Duration
		if len(s.lostAt) > 0 {
			span = s.lostAt[len(s.lostAt)-1].Sub(s.lostAt[0]) + every
		}
		t.Logf("ping %s every %v across e1's agent restart: %d sent, %d lost %s (gap ≈ %v), slowest reply %v",
			names[i], every, s.sent, s.lost, clock(s.lostAt), span.Round(time.Millisecond), s.maxRTT.Round(time.Millisecond))
		for _, at := range s.lostAt {
			if at.Before(stopAt.Add(-time.Second)) || at.After(stopped.Add(5*time.Second)) {
				t.Errorf("ping %s lost at %s, outside the restart (%s to %s)", names[i], clock([]time.Time{at}), clock([]time.Time{stopAt}), clock([]time.Time{stopped}))
			}
		}
		if s.lost == s.sent {
			t.Errorf("ping %s: nothing answered", names[i])
		}
	}
	running := w.logTime(t, e1, "agent running")
	made := w.logTime(t, e1, "WireGuard device created")
	t.Logf("e1's agent: stop %v (SIGINT to exit), exec to \"agent running\" %v, then to its device %v",
		stopped.Sub(stopAt).Round(time.Millisecond), running.Sub(stopped).Round(time.Millisecond), made.Sub(running).Round(time.Millisecond))
}

// countReplies is how many replies a pinger has had so far.
func countReplies(p *wgPinger) int {
	n := 0
	for _, l := range strings.Split(p.out.String(), "\n") {
		if pingReply.MatchString(l) {
			n++
		}
	}
	return n
}
