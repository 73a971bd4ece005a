package networld

import (
	"os"
	"strconv"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/reconciler/netplan"
)

// TestGatewayPlannedMove: the control plane moves gw's gateway from g1 to
// the hot standby g2 (both healthy: the plan's catch-up, or a topology
// change), every agent reads its new config at about the same time, and
// pods ping across: from east to pods behind the gateway and on both
// candidates, and from those pods back. A move between hot standbys loses
// at most what a failover may (1 s). Without the conntrack reset of
// nodeagent/natflows.go the pods on g1 and g2 never got a reply again:
// their flows kept the NAT binding of the old way out.
func TestGatewayPlannedMove(t *testing.T) {
	requireRoot(t)
	w, topo, _, agents := haWorld(t, "khm-")
	e1Pod := PodIP(haNodes[0].PodCIDRs[0])
	poll.NoError(t, 20*time.Second, "east reaches the pod behind gw", func() error {
		return ping(w.PodNS("east", "e1"), globalAddr(topo, haNodes[4]))
	})
	ps := []*seqPing{
		startSeqPing(t, "east/e1 → g4's pod", w.PodNS("east", "e1"), globalAddr(topo, haNodes[4])),
		startSeqPing(t, "east/e1 → g1's pod", w.PodNS("east", "e1"), globalAddr(topo, haNodes[1])),
		startSeqPing(t, "east/e1 → g2's pod", w.PodNS("east", "e1"), globalAddr(topo, haNodes[2])),
		startSeqPing(t, "g4's pod → east/e1", w.PodNS("gw", "g4"), e1Pod),
		startSeqPing(t, "g1's pod → east/e1", w.PodNS("gw", "g1"), e1Pod),
		startSeqPing(t, "g2's pod → east/e1", w.PodNS("gw", "g2"), e1Pod),
	}
	for _, s := range ps {
		want := s.replies() + 10
		poll.Until(t, 10*time.Second, s.name+": 10 replies", func() bool { return s.replies() >= want })
	}
	// The plan with g2 in force: candidates g2, g1, g3.
	facts := netplan.Facts{}
	for _, n := range haNodes {
		f := facts[n.Cluster]
		nd := netplan.Node{Name: n.Name, Ready: true, PodCIDRs: n.PodCIDRs}
		for _, u := range n.Underlay {
			nd.InternalIPs = append(nd.InternalIPs, u.Addr())
		}
		f.Nodes = append(f.Nodes, nd)
		facts[n.Cluster] = f
	}
	gw := facts["gw"]
	gw.Gateway = "g2"
	facts["gw"] = gw
	moved := netplan.Compute(&topo.Spec, facts)
	if cp := moved.Cluster("gw"); cp.Gateway != "g2" {
		t.Fatalf("the moved plan elects %s, want g2", cp.Gateway)
	}
	for _, c := range moved.Clusters {
		for _, nc := range c.Configs {
			if err := os.WriteFile(agents[nc.Name].file, configFile(t, moved, c.Name, nc), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Every agent reads its file again on a kernel change: poke them all.
	start := time.Now()
	for _, n := range haNodes {
		ns := w.NodeNS(n.Cluster, n.Name)
		if _, err := Run("ip", "-n", ns, "route", "add", "198.18.255.1/32", "dev", "lo"); err != nil {
			t.Fatal(err)
		}
		_, _ = Run("ip", "-n", ns, "route", "del", "198.18.255.1/32", "dev", "lo")
	}
	bridge := func(i int) string { return "220.168.5." + strconv.Itoa(21+i) }
	local := func(i int) string { return "210.168.5." + strconv.Itoa(21+i) }
	took := poll.Until(t, 10*time.Second, "every sender to route through g2", func() bool {
		return routeVia(w.NodeNS("east", "e1"), "100.65.0.0/16") == bridge(1) && routeVia(w.NodeNS("gw", "g4"), "10.10.0.0/16") == local(1)
	})
	t.Logf("routes moved %v after the configs changed", took.Round(time.Millisecond))
	wants := make([]int, len(ps))
	for i, s := range ps {
		wants[i] = s.replies() + 20
	}
	resumed := func() bool {
		for i, s := range ps {
			if s.replies() < wants[i] {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(15 * time.Second); !resumed() && time.Now().Before(deadline); {
		select {
		case <-time.After(100 * time.Millisecond):
		case <-t.Context().Done():
			return
		}
	}
	if !resumed() { // what the candidates' conntrack holds, to see which NAT binding stayed
		for _, n := range []string{"g1", "g2", "g4"} {
			ct, _ := Run("ip", "netns", "exec", w.NodeNS("gw", n), "cat", "/proc/net/nf_conntrack")
			t.Logf("conntrack of %s:\n%s", n, ct)
		}
		t.Logf("agent g1:\n%s", agents["g1"].log.String())
	}
	t.Logf("the move took %v", time.Since(start).Round(time.Millisecond))
	for _, s := range ps {
		l := s.stop(t)
		t.Logf("planned move g1 → g2: %s: %s", s.name, l)
		if l.longest > 10 {
			t.Errorf("planned move g1 → g2: %s: %s, want no gap over 1 s", s.name, l)
		}
	}
}
