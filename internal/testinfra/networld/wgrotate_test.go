package networld

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// rotate rotates n's key the way the agent and the reconciler do it:
// `kosmos agent --rotate-wireguard-key` makes the next key; once the agent
// published it (its log here, status.wireGuard.nextPublicKey in a
// cluster), the plan carries it to the peers; once the agent promoted it,
// the plan carries the new public key. It returns the new key.
func (w *wgWorld) rotate(t testing.TB, n NodeSpec, encryption string) string {
	t.Helper()
	before := w.keys[n.Name]
	out, err := InNS(w.NodeNS(n.Cluster, n.Name), kosmosBin, "agent", "--rotate-wireguard-key", "--state-dir", w.stateDir(n))
	if err != nil {
		t.Fatal(err)
	}
	next := strings.TrimSpace(out)
	if next == before || len(next) != v1alpha1.WireGuardPublicKeyLength {
		t.Fatalf("%s: rotation gave next key %q (current %s)", n.Name, next, before)
	}
	logHas := func(s ...string) bool { return w.logLine(n, s...) }
	poll.Until(t, 10*time.Second, n.Name+"'s agent to publish its next key", func() bool { return logHas("WireGuard rotation begun", next) })
	if w.next == nil {
		w.next = map[string]string{}
	}
	w.next[n.Name] = next
	w.plan(t, encryption) // the reconciler carries status.wireGuard.nextPublicKey
	poll.Until(t, 30*time.Second, n.Name+"'s agent to promote its next key", func() bool { return logHas("WireGuard key rotated", "publicKey=\""+next) })
	w.keys[n.Name] = next
	delete(w.next, n.Name)
	w.plan(t, encryption) // ... and then the new status.wireGuard.publicKey
	return next
}

// logLine says whether a line of n's agent log holds every one of s.
func (w *wgWorld) logLine(n NodeSpec, s ...string) bool {
	for _, l := range strings.Split(w.logs[n.Name].String(), "\n") {
		all := true
		for _, x := range s {
			all = all && strings.Contains(l, x)
		}
		if all {
			return true
		}
	}
	return false
}

// logTime is the time of the first line of n's agent log that holds s.
func (w *wgWorld) logTime(t *testing.T, n NodeSpec, s string) time.Time {
	t.Helper()
	for _, l := range strings.Split(w.logs[n.Name].String(), "\n") {
		if !strings.Contains(l, s) {
			continue
		}
		if m := logStamp.FindStringSubmatch(l); m != nil {
			if at, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
				return at
			}
		}
	}
	t.Fatalf("%s's log has no line %q", n.Name, s)
	return time.Time{}
}

var logStamp = regexp.MustCompile(`^time=(\S+) `)

// wgPinger is a ping every interval from one pod to another.
type wgPinger struct {
	cmd *exec.Cmd
	out syncBuffer
}

func startWGPinger(t *testing.T, fromNS, to string, count int, interval time.Duration) *wgPinger {
	t.Helper()
	p := &wgPinger{cmd: exec.Command("ip", "netns", "exec", fromNS, "ping", "-n", "-D", "-O", "-c", strconv.Itoa(count), "-i", fmt.Sprintf("%.3f", interval.Seconds()), "-W", "2", to)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

var pingNoAnswer = regexp.MustCompile(`^\[([0-9.]+)\] no answer yet for icmp_seq=(\d+)`)

func clock(ts []time.Time) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.UTC().Format("15:04:05.000"))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// unanswered is how many pings in a row have gone unanswered since the
// last reply.
func (p *wgPinger) unanswered() int {
	last, pending := 0, 0
	for _, l := range strings.Split(p.out.String(), "\n") {
		if r := pingReply.FindStringSubmatch(l); r != nil {
			last, _ = strconv.Atoi(r[2])
		} else if r := pingNoAnswer.FindStringSubmatch(l); r != nil {
			pending, _ = strconv.Atoi(r[2])
		}
	}
	return pending - last
}

var pingReply = regexp.MustCompile(`^\[([0-9.]+)\] .*icmp_seq=(\d+) .*time=([0-9.]+) ms`)

// pingStats is what a pinger saw: requests sent, without reply, the
// slowest reply and the replies slower than lateRTT (a stall that staging
// in WireGuard hides from the loss count), and when the unanswered ones
// were about due.
type pingStats struct {
	sent, lost, late int
	maxRTT           time.Duration
	lostAt           []time.Time
	lateAt           []time.Time
}

const lateRTT = 300 * time.Millisecond

// lostAfter: a reply later than this counts as lost. WireGuard holds a
// stalled peer's packets until the next handshake and then delivers them,
// which would hide a stall from a plain loss count; for a probe every
// 20 ms, a reply after a second is as good as none.
const lostAfter = time.Second

// wait waits for the pinger to end and returns what it saw.
func (p *wgPinger) wait(t *testing.T) pingStats {
	t.Helper()
	_ = p.cmd.Wait()
	out := p.out.String()
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ping summary missing: %s", out)
	}
	var s pingStats
	s.sent, _ = strconv.Atoi(m[1])
	got, _ := strconv.Atoi(m[2])
	s.lost = s.sent - got // and those answered after lostAfter, below
	seen := map[int]bool{}
	noAnswer := map[int]float64{}
	var first float64
	for _, l := range strings.Split(out, "\n") {
		if r := pingNoAnswer.FindStringSubmatch(l); r != nil {
			ts, _ := strconv.ParseFloat(r[1], 64)
			seq, _ := strconv.Atoi(r[2])
			noAnswer[seq] = ts - 0.02 // noticed when the next one was sent
		}
		r := pingReply.FindStringSubmatch(l)
		if r == nil {
			continue
		}
		ts, _ := strconv.ParseFloat(r[1], 64)
		seq, _ := strconv.Atoi(r[2])
		ms, _ := strconv.ParseFloat(r[3], 64)
		rtt := time.Duration(ms * float64(time.Millisecond))
		if first == 0 {
			first = ts - float64(seq)*0.02
		}
		if rtt <= lostAfter {
			seen[seq] = true
		} else {
			noAnswer[seq] = ts - rtt.Seconds()
		}
		s.maxRTT = max(s.maxRTT, rtt)
		if rtt > lateRTT {
			s.late++
			s.lateAt = append(s.lateAt, time.Unix(0, int64(ts*1e9)).Add(-rtt))
		}
	}
	s.lost = 0
	for seq := 1; seq <= s.sent; seq++ {
		if !seen[seq] {
			s.lost++
			ts, ok := noAnswer[seq]
			if !ok {
				ts = first + float64(seq)*0.02
			}
			s.lostAt = append(s.lostAt, time.Unix(0, int64(ts*1e9)))
		}
	}
	return s
}

// writeKeyOnePhase replaces a node's key file with a new key, as the
// one-phase rotation did (the agent swaps its key at once).
func writeKeyOnePhase(t *testing.T, dir string) string {
	t.Helper()
	var priv [32]byte
	if _, err := rand.Read(priv[:]); err != nil {
		t.Fatal(err)
	}
	priv[0] &= 248
	priv[31] = priv[31]&127 | 64
	pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".onephase")
	if err := os.WriteFile(tmp, []byte(base64.StdEncoding.EncodeToString(priv[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "wireguard.key")); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(pub)
}

// TestWireGuardLosslessRotation: east (P2P, asks for WireGuard), gw
// (Gateway) and west (clear, but its pair with east is encrypted). While
// e1 rotates its key, pings every 20 ms run both ways between e1's pod and
// the pods of w1 and g1, and a TCP stream runs e1 → w1: not one ping is
// lost, the stream goes on, and the rotation devices are gone at the end.
// A ping counts as lost when it gets no reply within lostAfter (1 s).
// The same measurement across the earlier one-phase swap (the key file
// replaced under the running agent, then the plan) loses pings: the test
// sees what it guards against.
func TestWireGuardLosslessRotation(t *testing.T) {
	requireRoot(t)
	start := time.Now()
	nodes := []NodeSpec{
		node("east", "e1", "192.168.0.11/24", "10.10.1.0/24"),
		node("east", "e2", "192.168.0.12/24", "10.10.2.0/24"),
		node("gw", "g1", "192.168.0.21/24", "10.20.1.0/24"),
		node("west", "w1", "192.168.0.31/24", "10.30.1.0/24"),
	}
	w := newWGWorld(t, "kwr-", nodes, nil)
	w.plan(t, "WireGuard")
	for _, n := range nodes {
		w.start(t, n)
	}
	e1, g1, w1 := nodes[0], nodes[2], nodes[3]
	pod := func(n NodeSpec) string { return w.PodNS(n.Cluster, n.Name) }
	podIP := func(n NodeSpec) string { return PodIP(n.PodCIDRs[0]).String() }
	for _, pair := range [][2]NodeSpec{{e1, w1}, {w1, e1}, {e1, g1}, {g1, e1}} {
		poll.NoError(t, 20*time.Second, "ping "+pair[0].Name+" → "+pair[1].Name, func() error { return ping(pod(pair[0]), PodIP(pair[1].PodCIDRs[0])) })
	}
	t.Logf("world up, every pair pinging after %v", time.Since(start).Round(time.Millisecond))

	// measure runs pingers every 20 ms both ways e1 ↔ w1 and e1 ↔ g1 and a
	// TCP stream e1 → w1 across rotate; it returns the pings lost.
	measure := func(what string, rotate func(ps []*wgPinger)) (lostAt []time.Time, late int) {
		t.Helper()
		const every, count = 20 * time.Millisecond, 1000 // 20 s
		stream := startWGStream(t, pod(e1), pod(w1), PodIP(w1.PodCIDRs[0]))
		poll.Until(t, 10*time.Second, "the stream to flow", func() bool { return stream.received() > 64<<10 })
		var ps []*wgPinger
		var names []string
		for _, pair := range [][2]NodeSpec{{e1, w1}, {w1, e1}, {e1, g1}, {g1, e1}} {
			ps = append(ps, startWGPinger(t, pod(pair[0]), podIP(pair[1]), count, every))
			names = append(names, pair[0].Name+"→"+pair[1].Name)
		}
		began := time.Now()
		t.Logf("%s: begins %s", what, began.UTC().Format("15:04:05.000"))
		rotate(ps)
		t.Logf("%s: rotation done in %v", what, time.Since(began).Round(time.Millisecond))
		mark := stream.received()
		poll.Until(t, 30*time.Second, what+": the stream to go on", func() bool { return stream.received() > mark+256<<10 })
		for i, p := range ps {
			s := p.wait(t)
			t.Logf("%s: ping %s every %v: %d sent, %d lost %s, %d later than %v (sent at %s), slowest %v", what, names[i], every, s.sent, s.lost, clock(s.lostAt[:min(len(s.lostAt), 5)]), s.late, lateRTT, clock(s.lateAt[:min(len(s.lateAt), 5)]), s.maxRTT.Round(time.Millisecond))
			lostAt, late = append(lostAt, s.lostAt...), late+s.late
		}
		if err := stream.stop(); err != nil {
			t.Errorf("%s: the TCP stream broke: %v", what, err)
		}
		t.Logf("%s: TCP stream e1 → w1 carried %d KiB", what, stream.received()>>10)
		stream.conn.Close()
		stream.ln.Close() // the next measurement listens on the same port
		return lostAt, late
	}

	// Control: the same measurement without a rotation, for the loss this
	// loaded machine shows anyway.
	control, _ := measure("no rotation", func([]*wgPinger) {})

	before := w.keys["e1"]
	var window [2]time.Time
	lostAt, late := measure("two-phase rotation", func([]*wgPinger) {
		next := w.rotate(t, e1, "WireGuard")
		window[0] = w.logTime(t, e1, "WireGuard rotation begun")
		// The rotation devices settle and go on every node.
		for _, n := range []NodeSpec{e1, g1, w1} {
			poll.Until(t, 30*time.Second, n.Name+"'s rotation device to go", func() bool {
				links, _ := Run("ip", "-n", w.NodeNS(n.Cluster, n.Name), "-o", "link")
				return !strings.Contains(links, ": vx-wg1:")
			})
		}
		if k := w.publicKey(t, e1); k != next {
			t.Errorf("e1's key file holds %s after the rotation, want %s", k, next)
		}
		if _, err := os.Stat(filepath.Join(w.stateDir(e1), "wireguard.next.key")); err == nil {
			t.Error("e1's next key file is still there after the rotation")
		}
		window[1] = time.Now()
	})
	// From e1 taking up its next key to the last rotation device gone:
	// not one ping lost.
	var during []time.Time
	for _, at := range lostAt {
		if !at.Before(window[0]) && !at.After(window[1]) {
			during = append(during, at)
		}
	}
	t.Logf("two-phase rotation from %s to %s: %d pings lost during it %s, %d in all %s (without a rotation: %d %s)",
		window[0].UTC().Format("15:04:05.000"), window[1].UTC().Format("15:04:05.000"), len(during), clock(during), len(lostAt), clock(lostAt[:min(len(lostAt), 5)]), len(control), clock(control[:min(len(control), 5)]))
	if len(during) != 0 {
		t.Errorf("two-phase rotation: %d pings lost during the rotation, want 0", len(during))
	}
	lost := len(lostAt)
	t.Logf("two-phase rotation: %d replies later than %v", late, lateRTT)
	if w.keys["e1"] == before {
		t.Error("e1's key did not change")
	}

	// The earlier one-phase swap, measured the same way, loses pings.
	lostOldAt, lateOld := measure("one-phase swap", func(ps []*wgPinger) {
		newKey := writeKeyOnePhase(t, w.stateDir(e1))
		poll.Until(t, 10*time.Second, "e1's agent to swap its key", func() bool {
			return w.logLine(e1, "WireGuard key rotated", "publicKey=\""+newKey)
		})
		// The peers learn the new key one reconcile round-trip later: the
		// plan follows once e1's pings to w1 have gone unanswered for a
		// second (a round-trip through an API server takes about that).
		poll.Until(t, 20*time.Second, "e1's pings to w1 to stall for a second", func() bool { return ps[0].unanswered() >= int(lostAfter/(20*time.Millisecond)) })
		w.keys["e1"] = newKey
		w.plan(t, "WireGuard")
		poll.NoError(t, 20*time.Second, "e1 → w1 after the swap", func() error { return ping(pod(e1), PodIP(w1.PodCIDRs[0])) })
	})
	lostOld := len(lostOldAt)
	if lostOld == 0 {
		t.Errorf("the one-phase swap lost no ping: the measurement cannot tell a lossless rotation")
	}
	t.Logf("pings lost: two-phase %d, one-phase %d; later than %v: two-phase %d, one-phase %d; whole test %v", lost, lostOld, lateRTT, late, lateOld, time.Since(start).Round(time.Millisecond))
}
