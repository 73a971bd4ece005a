package networld

import (
	"net/netip"
	"strings"
	"testing"

	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// cniMasquerade gives a node namespace the masquerade rules a CNI and
// kube-proxy put there, before any agent runs (as on a real node):
//   - flannel --ip-masq style: `! -d <cluster pod CIDR> -j MASQUERADE`;
//   - kube-proxy style: KUBE-POSTROUTING, prepended to POSTROUTING, that
//     masquerades what KUBE-MARK-MASQ marked, and a mark on everything a
//     pod sends outside the pod range (as --masquerade-all marks service
//     traffic).
func cniMasquerade(t *testing.T, ns string, podCIDR string) {
	t.Helper()
	for _, r := range [][]string{
		{"-t", "nat", "-A", "POSTROUTING", "!", "-d", podCIDR, "-j", "MASQUERADE"},
		{"-t", "nat", "-N", "KUBE-MARK-MASQ"},
		{"-t", "nat", "-A", "KUBE-MARK-MASQ", "-j", "MARK", "--or-mark", "0x4000"},
		{"-t", "nat", "-N", "KUBE-POSTROUTING"},
		{"-t", "nat", "-A", "KUBE-POSTROUTING", "-m", "mark", "!", "--mark", "0x4000/0x4000", "-j", "RETURN"},
		{"-t", "nat", "-A", "KUBE-POSTROUTING", "-j", "MARK", "--xor-mark", "0x4000"},
		{"-t", "nat", "-A", "KUBE-POSTROUTING", "-j", "MASQUERADE"},
		{"-t", "nat", "-I", "POSTROUTING", "1", "-j", "KUBE-POSTROUTING"},
		{"-t", "nat", "-A", "PREROUTING", "-s", podCIDR, "!", "-d", podCIDR, "-j", "KUBE-MARK-MASQ"},
	} {
		if _, err := InNS(ns, append([]string{"iptables", "-w"}, r...)...); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNoMasqueradeAcrossClusters: every node carries flannel- and
// kube-proxy-style masquerade rules; a TCP connection from a pod to a pod
// of another cluster still arrives from the sender's pod address (its
// global one where its cluster maps it), from a P2P cluster, a mapped P2P
// cluster and a Gateway cluster's non-gateway node. With the jump to
// KOSMOS-NOMASQ removed on one node, the CNI's rules masquerade again: the
// rules the test adds do bite.
func TestNoMasqueradeAcrossClusters(t *testing.T) {
	requireRoot(t)
	w, err := Build("ktm-", worldNodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Destroy)
	topo, p := plan(t, worldTopology, worldNodes)
	for _, n := range worldNodes {
		cniMasquerade(t, w.NodeNS(n.Cluster, n.Name), topo.Spec.Cluster(n.Cluster).Network.PodCIDRs[0])
	}
	applyPlan(t, w, p)

	e1, g1, g2, w1 := worldNodes[0], worldNodes[2], worldNodes[3], worldNodes[4]
	gateway := p.Cluster("gw").Gateway
	nonGateway := g2
	if gateway == g2.Name {
		nonGateway = g1
	}
	for _, c := range [][2]NodeSpec{{e1, w1}, {w1, e1}, {nonGateway, e1}, {e1, nonGateway}, {nonGateway, w1}} {
		from, to := c[0], c[1]
		src, err := tcpSource(t, w.PodNS(from.Cluster, from.Name), w.PodNS(to.Cluster, to.Name), globalAddr(topo, to))
		if err != nil {
			t.Errorf("tcp %s/%s → %s/%s: %v", from.Cluster, from.Name, to.Cluster, to.Name, err)
			continue
		}
		want := globalAddr(topo, from)
		t.Logf("tcp %s/%s → %s/%s: the receiver saw %s (want %s)", from.Cluster, from.Name, to.Cluster, to.Name, src, want)
		if src != want {
			t.Errorf("tcp %s/%s → %s/%s: the receiver saw %s, want the sender's pod address %s", from.Cluster, from.Name, to.Cluster, to.Name, src, want)
		}
	}

	// The control: without the jump on e1, the CNI's rules masquerade.
	if _, err := InNS(w.NodeNS(e1.Cluster, e1.Name), "iptables", "-w", "-t", "nat", "-D", nodeagentPostrouting, "-j", nodeagentNoMasq); err != nil {
		t.Fatal(err)
	}
	src, err := tcpSource(t, w.PodNS(e1.Cluster, e1.Name), w.PodNS(w1.Cluster, w1.Name), globalAddr(topo, w1))
	if err != nil {
		t.Fatalf("tcp east/e1 → west/w1 without KOSMOS-NOMASQ: %v", err)
	}
	t.Logf("without the jump to KOSMOS-NOMASQ the receiver saw %s", src)
	if src == PodIP(e1.PodCIDRs[0]) {
		t.Errorf("without the jump to KOSMOS-NOMASQ the receiver still saw the pod address %s: the CNI rules of the test do not masquerade", src)
	}
}

// The agent's chains (nodeagent.ChainPostrouting, nodeagent.ChainNoMasq),
// spelled out: this package runs the agent as a binary.
const (
	nodeagentPostrouting = "KOSMOS-POSTROUTING"
	nodeagentNoMasq      = "KOSMOS-NOMASQ"
)

// TestCalicoBlocksRouted: nodes whose pods live in several Calico-style /26
// blocks, none in spec.podCIDRs. The facts come from the blocks as the
// reconciler reads them (desired.ApplyIPAM); pings from pods of the other
// clusters reach the pod address in every block.
func TestCalicoBlocksRouted(t *testing.T) {
	requireRoot(t)
	const topoYAML = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: calico}
spec:
  clusters:
    - name: calico
      role: host
      kubeconfig: {context: calico}
      network: {podCIDRs: [10.20.0.0/16], ipam: Calico}
    - name: plain
      role: member
      kubeconfig: {context: plain}
      network: {podCIDRs: [10.10.0.0/16]}
    - name: gw
      role: member
      kubeconfig: {context: gw}
      network: {mode: Gateway, podCIDRs: [10.30.0.0/16]}
`
	blocks := map[string][]string{
		"c1": {"10.20.0.0/26", "10.20.0.64/26", "10.20.3.128/26"},
		"c2": {"10.20.0.128/26", "10.20.0.192/26", "10.20.7.0/26"},
	}
	nodes := []NodeSpec{
		{Cluster: "calico", Name: "c1", Underlay: []netip.Prefix{netip.MustParsePrefix("192.168.0.11/24")}},
		{Cluster: "calico", Name: "c2", Underlay: []netip.Prefix{netip.MustParsePrefix("192.168.0.12/24")}},
		node("plain", "p1", "192.168.0.21/24", "10.10.1.0/24"),
		node("gw", "g1", "192.168.0.31/24", "10.30.1.0/24"),
		node("gw", "g2", "192.168.0.32/24", "10.30.2.0/24"),
	}
	var cni desired.CNIObjects
	cni.Calico = true
	for i := range nodes {
		for _, b := range blocks[nodes[i].Name] {
			nodes[i].PodCIDRs = append(nodes[i].PodCIDRs, netip.MustParsePrefix(b))
			cni.Blocks = append(cni.Blocks, desired.CalicoBlock{Node: nodes[i].Name, CIDR: b, State: "confirmed"})
		}
	}
	w, err := Build("ktb-", nodes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Destroy)
	topo, err := schema.Load("calico.yaml", []byte(topoYAML))
	if err != nil {
		t.Fatal(err)
	}
	facts := netplan.Facts{}
	for _, n := range nodes {
		f := facts[n.Cluster]
		nd := netplan.Node{Name: n.Name, Ready: true, InternalIPs: []netip.Addr{n.Underlay[0].Addr()}}
		if n.Cluster != "calico" {
			nd.PodCIDRs = n.PodCIDRs // spec.podCIDRs; the Calico nodes have none
		}
		f.Nodes = append(f.Nodes, nd)
		facts[n.Cluster] = f
	}
	calico := facts["calico"]
	if err := desired.ApplyIPAM(&calico, desired.PickIPAM(v1alpha1.IPAMCalico, cni), cni); err != nil {
		t.Fatal(err)
	}
	facts["calico"] = calico
	p := netplan.Compute(&topo.Spec, facts)
	if len(p.Problems) > 0 {
		t.Fatalf("plan problems: %v", p.Problems)
	}
	for _, n := range nodes {
		cniMasquerade(t, w.NodeNS(n.Cluster, n.Name), topo.Spec.Cluster(n.Cluster).Network.PodCIDRs[0])
	}
	applyPlan(t, w, p)

	reached := 0
	for _, from := range nodes {
		for _, to := range nodes {
			if from.Cluster == to.Cluster || (from.Cluster != "calico" && to.Cluster != "calico") {
				continue
			}
			for _, b := range to.PodCIDRs {
				if err := ping(w.PodNS(from.Cluster, from.Name), PodIP(b)); err != nil {
					t.Errorf("ping %s/%s → %s/%s block %s (%s): %v", from.Cluster, from.Name, to.Cluster, to.Name, b, PodIP(b), err)
					continue
				}
				reached++
			}
		}
	}
	t.Logf("%d pings across clusters reached their block", reached)
	// The blocks of a node that tile a range cost one rule there.
	out, err := InNS(w.NodeNS("plain", "p1"), "iptables", "-w", "-t", "nat", "-S", nodeagentNoMasq)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "-d 10.20.0.0/24 -j ACCEPT") {
		t.Errorf("KOSMOS-NOMASQ on plain/p1 does not merge c1's and c2's tiling blocks into 10.20.0.0/24:\n%s", out)
	}
}
