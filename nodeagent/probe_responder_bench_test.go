package nodeagent

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/peering"
)

// BenchmarkProbeResponderCPU is the other side of BenchmarkProbeCPU: the
// CPU a node's responders cost answering 100 probes every 100 ms, as a
// fraction of one core, in two shapes: addrs=100, one probe to each of 100
// addresses (the mirror of BenchmarkProbeCPU), and addrs=1, 100 probes to
// one address (a gateway candidate probed by 100 nodes: the real shape).
// This process answers; a prober in another process probes. The cost is
// the process's CPU time over a window with the prober running minus the
// same window with the responders bound and no prober (the baseline,
// measured in the same run).
func BenchmarkProbeResponderCPU(b *testing.B) {
	for _, addrs := range []int{100, 1} {
		b.Run(fmt.Sprintf("addrs=%d", addrs), func(b *testing.B) { benchResponders(b, addrs) })
	}
}

func benchResponders(b *testing.B, addrs int) {
	const window = 3 * time.Second
	ln, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	port := ln.LocalAddr().(*net.UDPAddr).Port
	ln.Close()
	h := NewHA(HAOptions{Port: port, Interval: 100 * time.Millisecond, Passive: true})
	h.Update(nil, probeBenchAddrs()[:addrs])
	h.tick(time.Now()) // binds the responders
	defer h.closeAll()
	window3 := func() float64 {
		c0, t0 := cpuTime(b), time.Now()
		<-time.After(window)
		return float64(cpuTime(b)-c0) / float64(time.Since(t0))
	}
	measure := func() float64 {
		defer startProbeHelper(b, "TestProbeProberHelper", "KOSMOS_PROBE_PROBER="+strconv.Itoa(port), "KOSMOS_PROBE_ADDRS="+strconv.Itoa(addrs))()
		return window3()
	}
	var idle, busy float64
	for b.Loop() {
		idle = window3()
		busy = measure()
	}
	cost := max(busy-idle, 0)
	b.ReportMetric(idle, "idle-cores")
	b.ReportMetric(busy, "answering-cores")
	b.ReportMetric(cost, "cost-cores")
	fmt.Printf("answering 100 probes every 100 ms on %d addresses: %.4f of a core (idle responders %.4f, answering %.4f)\n", addrs, cost, idle, busy)
}

// TestProbeProberHelper is the prober process of
// BenchmarkProbeResponderCPU: with KOSMOS_PROBE_PROBER set to a port it
// probes 100 candidates every 100 ms until its stdin closes, spread over
// the first KOSMOS_PROBE_ADDRS of the benchmark's addresses; otherwise it
// does nothing.
func TestProbeProberHelper(t *testing.T) {
	port, err := strconv.Atoi(os.Getenv("KOSMOS_PROBE_PROBER"))
	if err != nil {
		return // not the helper process
	}
	addrs, err := strconv.Atoi(os.Getenv("KOSMOS_PROBE_ADDRS"))
	if err != nil || addrs < 1 || addrs > 100 {
		t.Fatalf("KOSMOS_PROBE_ADDRS=%q: want 1 to 100", os.Getenv("KOSMOS_PROBE_ADDRS"))
	}
	all := probeBenchAddrs()
	var cands []peering.Candidate
	for i := range 100 {
		cands = append(cands, peering.Candidate{Name: fmt.Sprintf("g%03d", i), Addr: all[i%addrs]})
	}
	h := NewHA(HAOptions{Port: port, Interval: 100 * time.Millisecond})
	h.Update([]peering.Group{{Cluster: "gw", Device: "vx-bridge", Candidates: cands}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}
