package nodeagent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/peering"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProbeCPU measures the CPU the gateway prober costs at 100
// candidates probed every 100 ms, as a fraction of one core: the process's
// CPU time over a window with the prober running (it sends the probes and
// reads the replies of 100 responders running in another process), minus
// the same window with an idle prober (the baseline, measured in the same
// run). Target < 1% of a core.
func BenchmarkProbeCPU(b *testing.B) {
	const window = 3 * time.Second
	ln, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	port := ln.LocalAddr().(*net.UDPAddr).Port
	ln.Close()
	var cands []peering.Candidate
	for i, a := range probeBenchAddrs() {
		cands = append(cands, peering.Candidate{Name: fmt.Sprintf("g%03d", i), Addr: a})
	}
	defer startProbeHelper(b, "TestProbeResponderHelper", "KOSMOS_PROBE_RESPONDERS="+strconv.Itoa(port))()
	measure := func(groups []peering.Group, answer []netip.Addr) float64 {
		h := NewHA(HAOptions{Port: port, Interval: 100 * time.Millisecond})
		h.Update(groups, answer)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go h.Run(ctx)
		deadline := time.Now().Add(window)
		c0, t0 := cpuTime(b), time.Now()
		<-time.After(time.Until(deadline))
		return float64(cpuTime(b)-c0) / float64(time.Since(t0))
	}
	var idle, busy float64
	for b.Loop() {
		idle = measure(nil, nil)
		busy = measure([]peering.Group{{Cluster: "gw", Device: "vx-bridge", Candidates: cands}}, nil)
	}
	cost := max(busy-idle, 0)
	b.ReportMetric(idle, "idle-cores")
	b.ReportMetric(busy, "probing-cores")
	b.ReportMetric(cost, "cost-cores")
	fmt.Printf("probing 100 candidates every 100 ms: %.4f of a core (idle prober %.4f, probing %.4f)\n", cost, idle, busy)
}

// probeBenchAddrs are the 100 loopback addresses BenchmarkProbeCPU probes.
func probeBenchAddrs() []netip.Addr {
	var out []netip.Addr
	for i := range 100 {
		out = append(out, netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}))
	}
	return out
}

// TestProbeResponderHelper is the responder process of BenchmarkProbeCPU:
// with KOSMOS_PROBE_RESPONDERS set to a port it answers probes on the
// benchmark's addresses until its stdin closes; otherwise it does nothing.
func TestProbeResponderHelper(t *testing.T) {
	port, err := strconv.Atoi(os.Getenv("KOSMOS_PROBE_RESPONDERS"))
	if err != nil {
		return // not the helper process
	}
	h := NewHA(HAOptions{Port: port, Interval: 100 * time.Millisecond})
	h.Update(nil, probeBenchAddrs())
	h.tick(time.Now()) // binds the responders
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// startProbeHelper runs this test binary's helper test in another process
// with env added, waits for its "ready" line and returns the function that
// stops it (its stdin closes).
func startProbeHelper(b *testing.B, test string, env ...string) (stop func()) {
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop = func() { stdin.Close(); _ = cmd.Wait() }
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		stop()
		b.Fatalf("%s process: %q %v", test, line, err)
	}
	return stop
}
