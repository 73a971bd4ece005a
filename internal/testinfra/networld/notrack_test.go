package networld

import (
	"fmt"
	"strings"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestTunnelUntracked: on nodes where conntrack runs (a rule needs it, as
// kube-proxy's do on every Kubernetes node), pods ping across the tunnel;
// the pods' flow is tracked on both nodes, the tunnel's own UDP is not
// (KOSMOS-NOTRACK-IN and -OUT). Before them each node held an UNREPLIED
// entry per direction of every inner flow, as the counts below showed.
func TestTunnelUntracked(t *testing.T) {
	nodes := []NodeSpec{
		node("east", "e1", "192.168.0.11/24", "10.10.1.0/24"),
		node("north", "n1", "192.168.0.41/24", "10.30.1.0/24"),
		node("west", "w1", "192.168.0.31/24", "10.244.1.0/24"),
	}
	w, err := Build("knt-", nodes)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Destroy()
	for _, n := range w.Nodes {
		if _, err := InNS(w.NodeNS(n.Cluster, n.Name), "iptables", "-w", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"); err != nil {
			t.Fatal(err)
		}
	}
	_, p := plan(t, benchTopology, nodes)
	applyPlan(t, w, p)
	e1, n1 := w.PodNS("east", "e1"), w.PodNS("north", "n1")
	for _, dir := range [][2]string{{e1, "10.30.1.2"}, {n1, "10.10.1.2"}} {
		if _, err := InNS(dir[0], "ping", "-c", "3", "-i", "0.2", "-W", "1", dir[1]); err != nil {
			t.Fatalf("ping %s → %s: %v", dir[0], dir[1], err)
		}
	}
	port := fmt.Sprintf("dport=%d ", v1alpha1.DefaultBridgePort)
	for _, n := range nodes[:2] {
		ns := w.NodeNS(n.Cluster, n.Name)
		table, err := InNS(ns, "cat", "/proc/net/nf_conntrack")
		if err != nil {
			t.Fatal(err)
		}
		var tunnel, pods int
		for _, l := range strings.Split(table, "\n") {
			switch {
			case strings.Contains(l, port):
				tunnel++
			case strings.Contains(l, " icmp ") && strings.Contains(l, "src=10."):
				pods++
			}
		}
		if pods == 0 {
			t.Errorf("%s: the pods' pings are not tracked: conntrack does not run, the test proves nothing\n%s", ns, table)
		}
		if tunnel > 0 {
			t.Errorf("%s: %d conntrack entries for the tunnel's own UDP:\n%s", ns, tunnel, table)
		}
		t.Logf("%s: %d pod flows tracked, %d tunnel entries", ns, pods, tunnel)
	}
}
