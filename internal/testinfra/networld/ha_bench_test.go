package networld

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkGatewayFailover takes the active gateway's underlay link down 20
// times (up again in between, with a short failback hold) and measures how
// long east's agent takes to move its route to the standby: the failover
// time, from the link going down to the new route in the kernel. It
// reports p50, p99 and max, in seconds and as a ratio to the probe interval
// (100 ms; 3 misses make a candidate down, so the floor is 3 to 4
// intervals). The target is p99 ≤ 1 s.
func BenchmarkGatewayFailover(b *testing.B) {
	const interval, downs = 100 * time.Millisecond, 20
	nodes := haNodes[:4] // e1, g1, g2, g3
	w := benchWorld(b, "khb-", nodes)
	_, p := plan(b, haTopology, nodes)
	dir := b.TempDir()
	agents := map[string]*haAgent{}
	for _, c := range p.Clusters {
		for _, nc := range c.Configs {
			f := filepath.Join(dir, nc.Name+".yaml")
			if err := os.WriteFile(f, configFile(b, p, c.Name, nc), 0o644); err != nil {
				b.Fatal(err)
			}
			agents[nc.Name] = startHAAgentHold(b, w.NodeNS(c.Name, nc.Name), f, 300*time.Millisecond)
		}
	}
	e1 := w.NodeNS("east", "e1")
	via := func(addr string) func() bool {
		return func() bool { return routeVia(e1, "100.65.0.0/16") == addr }
	}
	wait := func(what string, cond func() bool) time.Duration {
		start := time.Now()
		for !cond() {
			if time.Since(start) > 20*time.Second {
				b.Fatalf("timed out waiting for %s", what)
			}
		}
		return time.Since(start)
	}
	link := func(state string) {
		if _, err := Run("ip", "-n", w.underlayNS(), "link", "set", "u1", state); err != nil {
			b.Fatal(err)
		}
	}
	var times []time.Duration
	for b.Loop() {
		times = times[:0]
		for range downs {
			wait("e1 on g1", via("220.168.5.21"))
			link("down")
			times = append(times, wait("e1 on g2", via("220.168.5.22")))
			link("up")
		}
	}
	slices.Sort(times)
	q := func(f float64) time.Duration { return times[min(len(times)-1, int(f*float64(len(times))))] }
	p50, p99, worst := q(0.50), q(0.99), times[len(times)-1]
	r := func(d time.Duration) float64 { return float64(d) / float64(interval) }
	b.ReportMetric(p50.Seconds(), "p50-s")
	b.ReportMetric(p99.Seconds(), "p99-s")
	b.ReportMetric(worst.Seconds(), "max-s")
	b.ReportMetric(r(p50), "p50/interval")
	b.ReportMetric(r(p99), "p99/interval")
	b.ReportMetric(r(worst), "max/interval")
	fmt.Printf("gateway failover over %d link-downs, probe interval %v: p50 %v (%.1f×), p99 %v (%.1f×), max %v (%.1f×)\n",
		len(times), interval, p50.Round(time.Millisecond), r(p50), p99.Round(time.Millisecond), r(p99), worst.Round(time.Millisecond), r(worst))
	if passes := passAfter(agents["e1"].log.String()); len(passes) > 0 {
		slices.Sort(passes)
		fmt.Printf("east's agent: decision to full pass done over %d moves: p50 %v, max %v\n",
			len(passes), passes[len(passes)/2].Round(time.Millisecond), passes[len(passes)-1].Round(time.Millisecond))
	}
	if moves := movedAfter(agents["e1"].log.String()); len(moves) > 0 {
		slices.Sort(moves)
		fmt.Printf("east's agent: decision to routes written (fast path) over %d moves: p50 %v, max %v\n",
			len(moves), moves[len(moves)/2].Round(time.Millisecond), moves[len(moves)-1].Round(time.Millisecond))
	}
}

// movedAfter reads, from an agent's log, the times from a decision to move
// to the routes written by the fast path ("gateway failover: routes
// written routes=N ... afterDecision=...", N > 0).
func movedAfter(log string) []time.Duration {
	var out []time.Duration
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "gateway failover: routes written") || strings.Contains(line, " routes=0 ") {
			continue // a fast path that wrote nothing left the move to the full pass
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "afterDecision="); ok {
				if d, err := time.ParseDuration(v); err == nil {
					out = append(out, d)
				}
			}
		}
	}
	return out
}

// passAfter reads, from an agent's log, the times from a decision to move
// ("gateway failover") to the end of the next pass that wrote something
// ("kernel synced"), by the log's timestamps (millisecond precision): the
// route write of an agent without the fast path (with it, the full pass
// finds the routes written and logs nothing).
func passAfter(log string) []time.Duration {
	var out []time.Duration
	var decided time.Time
	for _, line := range strings.Split(log, "\n") {
		v, ok := strings.CutPrefix(line, "time=")
		if !ok {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, strings.Fields(v)[0])
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(line, `msg="gateway failover"`):
			decided = at
		case strings.Contains(line, `msg="kernel synced"`) && !decided.IsZero():
			out = append(out, at.Sub(decided))
			decided = time.Time{}
		}
	}
	return out
}
