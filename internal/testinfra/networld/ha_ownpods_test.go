package networld

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// selfFirstConfigFile is configFile with g2's own path naming g2 first: g2
// sends its own traffic out its own tunnel while every other node (east
// included) uses g1, the mirror of TestGatewaySplitTransit's split for
// g2's own pods.
func selfFirstConfigFile(t *testing.T, p *netplan.Plan, cluster string, nc v1alpha1.NodeConfig) []byte {
	t.Helper()
	nc = *nc.DeepCopy()
	if cluster == "gw" && nc.Name == "g2" {
		for i := range nc.Spec.Peers.Paths {
			path := &nc.Spec.Peers.Paths[i]
			j := slices.IndexFunc(path.Candidates, func(c v1alpha1.PathCandidate) bool { return c.Name == "g2" })
			if path.Via != "" || j < 0 {
				continue
			}
			g2 := path.Candidates[j]
			path.Candidates = append([]v1alpha1.PathCandidate{g2}, slices.Delete(slices.Clone(path.Candidates), j, j+1)...)
		}
	}
	return configFile(t, p, cluster, nc)
}

// TestGatewaySplitOwnPods: g2 sends its own traffic through itself while
// east sends to gw through g1. Connections from and to g2's own pod must
// hold through gw's GlobalCIDR NAT: g2 translates its own pods' traffic,
// and g1 hands what east sends to g2's pod range image on to g2 as it is
// (a reply to a connection g2 translated, or a new connection g2 then
// translates), instead of translating it itself.
func TestGatewaySplitOwnPods(t *testing.T) {
	requireRoot(t)
	w, err := Build("kso-", haNodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Destroy)
	topo, p := plan(t, haTopology, haNodes)
	dir := t.TempDir()
	for _, c := range p.Clusters {
		for _, nc := range c.Configs {
			f := filepath.Join(dir, c.Name+"-"+nc.Name+".yaml")
			if err := os.WriteFile(f, selfFirstConfigFile(t, p, c.Name, nc), 0o644); err != nil {
				t.Fatal(err)
			}
			startHAAgent(t, w.NodeNS(c.Name, nc.Name), f)
		}
	}
	e1pod := PodIP(haNodes[0].PodCIDRs[0])
	own := globalAddr(topo, haNodes[2]) // g2's pod
	e1, g2 := w.NodeNS("east", "e1"), w.NodeNS("gw", "g2")
	split := func() bool {
		return routeVia(e1, "100.65.0.0/16") == "220.168.5.21" && routeVia(g2, "10.10.1.0/24") == "220.168.5.11"
	}
	poll.Until(t, 20*time.Second, "east to route through g1, g2 through itself", split)
	rules, _ := InNS(w.NodeNS("gw", "g1"), "iptables", "-w", "-t", "nat", "-S", "KOSMOS-PREROUTING")
	t.Logf("g1 KOSMOS-PREROUTING:\n%s", rules)

	out := startStream(t, "stream g2's pod → e1", w.PodNS("gw", "g2"), w.PodNS("east", "e1"), e1pod, 7964)
	in := startStream(t, "stream e1 → g2's pod", w.PodNS("east", "e1"), w.PodNS("gw", "g2"), own, 7965)
	if out.src != own {
		t.Errorf("stream g2's pod → e1: receiver saw %s, want the global %s", out.src, own)
	}
	if in.src != e1pod {
		t.Errorf("stream e1 → g2's pod: receiver saw %s, want %s", in.src, e1pod)
	}
	for i := range 3 {
		phase := "the split, round " + string(rune('1'+i))
		out.flows(t, phase)
		in.flows(t, phase)
	}
	if !split() {
		t.Fatal("the split did not hold while the streams ran")
	}
	src, err := tcpSource(t, w.PodNS("gw", "g2"), w.PodNS("east", "e1"), e1pod)
	if err != nil || src != own {
		t.Errorf("tcp from g2's own pod to e1 during the split: source %s, err %v; want the global %s", src, err, own)
	}
}
