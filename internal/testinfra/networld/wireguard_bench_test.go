package networld

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/testinfra/poll"
)

const wgBenchTopology = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: wgbench}
spec:
  clusters:
    - {name: east, role: host, kubeconfig: {context: east}, network: {podCIDRs: [10.10.0.0/16], encryption: %[1]s}}
    - {name: north, role: member, kubeconfig: {context: north}, network: {podCIDRs: [10.40.0.0/16]}}
    - {name: south, role: member, kubeconfig: {context: south}, network: {podCIDRs: [10.50.0.0/16]}}
`

// cpuSeconds is the user+system CPU time a process has used.
func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data)[strings.LastIndexByte(string(data), ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// BenchmarkWireGuard: iperf3 TCP throughput pod → pod over the encrypted
// path (east asks: north–east is WireGuard, userspace wireguard-go in the
// agents) as a ratio to clear VXLAN (north–south) measured in the same run,
// and the agents' CPU seconds per Gbit transferred on the encrypted path.
// Not in make test: go test -bench WireGuard -run '^$' ./internal/testinfra/networld
func BenchmarkWireGuard(b *testing.B) {
	needIperf3(b)
	nodes := []NodeSpec{
		node("east", "e1", "192.168.0.11/24", "10.10.1.0/24"),
		node("north", "n1", "192.168.0.41/24", "10.40.1.0/24"),
		node("south", "s1", "192.168.0.51/24", "10.50.1.0/24"),
	}
	base := benchWorld(b, "kwb-", nodes)
	w := &wgWorld{World: base, dir: b.TempDir(), topo: wgBenchTopology, keys: map[string]string{}, agents: map[string]*exec.Cmd{}, logs: map[string]*syncBuffer{}}
	defer func() {
		for _, n := range nodes {
			w.stop(n)
		}
	}()
	for _, n := range nodes {
		w.keys[n.Name] = w.publicKey(b, n)
	}
	w.plan(b, "WireGuard")
	for _, n := range nodes {
		w.start(b, n)
	}
	pod := func(n NodeSpec) string { return w.PodNS(n.Cluster, n.Name) }
	for _, p := range [][2]NodeSpec{{nodes[1], nodes[0]}, {nodes[1], nodes[2]}} {
		poll.NoError(b, 20*time.Second, "ping "+p[0].Name+" → "+p[1].Name, func() error { return ping(pod(p[0]), PodIP(p[1].PodCIDRs[0])) })
	}
	// direct: TCP between the nodes' underlay addresses through the same
	// WireGuard devices (policy rules for iperf3's port into the agent's
	// table): the inner packet is TCP, so the TUN device's offloads (TSO
	// out, GRO in) apply, which they cannot to VXLAN (see the README).
	e1ns, n1ns := w.NodeNS("east", "e1"), w.NodeNS("north", "n1")
	direct := func() float64 {
		rules := [][2]string{
			{n1ns, "to " + nodes[0].Underlay[0].Addr().String() + " ipproto tcp dport 5301"},
			{e1ns, "to " + nodes[1].Underlay[0].Addr().String() + " ipproto tcp sport 5301"},
		}
		for _, r := range rules {
			if out, err := Run("ip", append([]string{"-n", r[0], "rule", "add", "priority", "4875"}, append(strings.Fields(r[1]), "lookup", "4876")...)...); err != nil {
				b.Fatalf("ip rule in %s: %v %s", r[0], err, out)
			}
		}
		defer func() {
			for _, r := range rules {
				_, _ = Run("ip", append([]string{"-n", r[0], "rule", "del", "priority", "4875"}, append(strings.Fields(r[1]), "lookup", "4876")...)...)
			}
		}()
		return iperf(b, e1ns, n1ns, nodes[0].Underlay[0].Addr())
	}
	var plain, enc, cpuPerGbit, tcp float64
	for b.Loop() {
		plain = iperf(b, pod(nodes[2]), pod(nodes[1]), PodIP(nodes[2].PodCIDRs[0]))
		cpu0 := cpuSeconds(w.agents["e1"].Process.Pid) + cpuSeconds(w.agents["n1"].Process.Pid)
		start := time.Now()
		enc = iperf(b, pod(nodes[0]), pod(nodes[1]), PodIP(nodes[0].PodCIDRs[0]))
		secs := time.Since(start).Seconds()
		cpu := cpuSeconds(w.agents["e1"].Process.Pid) + cpuSeconds(w.agents["n1"].Process.Pid) - cpu0
		cpuPerGbit = cpu / (enc / 1e9 * secs)
		tcp = direct()
	}
	b.ReportMetric(plain/1e9, "vxlan-Gbit/s")
	b.ReportMetric(enc/1e9, "wireguard-Gbit/s")
	b.ReportMetric(enc/plain, "wireguard/vxlan")
	b.ReportMetric(cpuPerGbit, "agent-cpu-s/Gbit")
	b.ReportMetric(tcp/1e9, "wireguard-tcp-Gbit/s")
	fmt.Printf("WireGuard (userspace): %.2f Gbit/s, clear VXLAN %.2f Gbit/s, ratio %.3f×; agents' CPU %.2f s per Gbit; TCP node to node through the same devices (offloads apply) %.2f Gbit/s = %.1f× the VXLAN-in-WireGuard figure\n",
		enc/1e9, plain/1e9, enc/plain, cpuPerGbit, tcp/1e9, tcp/enc)
}
