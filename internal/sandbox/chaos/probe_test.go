package chaos_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/internal/probe"
	"kosmos.io/kosmos/internal/sandbox"
	"kosmos.io/kosmos/internal/testinfra/networld"
	"kosmos.io/kosmos/internal/testinfra/poll"
)

// probeBroken is the last step of the suite (it leaves the fleet broken):
// kosmos check --probe's table over the sandbox's data plane passes, also
// with member-b's standby made the gateway; then
// member-c-n1's agent is stopped and its routes over vx-bridge deleted by
// hand, and the table fails, naming exactly the pairs that involve
// member-c, both ways.
func (c *chaos) probeBroken(t *testing.T, ctx context.Context) {
	nodes, err := sandbox.DataplaneNodes(c.sb.Topology, 2)
	if err != nil {
		t.Fatal(err)
	}
	run := func() ([]check.Check, string) {
		t.Helper()
		start := time.Now()
		checks, err := sandbox.ProbeChecks(ctx, chaosPrefix, c.sb.Topology, nodes, probe.Options{Timeout: time.Minute, PerProbe: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		check.WriteChecks(&out, checks)
		t.Logf("probe table in %s:\n%s", time.Since(start).Round(10*time.Millisecond), out.String())
		return checks, out.String()
	}
	checks, table := run()
	if !check.WriteChecks(&bytes.Buffer{}, checks) {
		t.Fatalf("the probe table fails on a converged fleet:\n%s", table)
	}
	if len(checks) < 2*4*3+2 { // endpoints, 4×3 ordered pairs from 2 networks, summary
		t.Fatalf("the probe table has %d rows, want one per ordered pair and network:\n%s", len(checks), table)
	}

	// A standby candidate's pods stay reachable from other clusters' host
	// networks: member-b-n1 stops answering probes, every agent moves to
	// member-b-n2, and the pod on member-b-n1 (now behind the gateway)
	// answers connections whose source is a remote tunnel address (they
	// are masqueraded where they enter, so the replies come back there).
	n1 := (&networld.World{Prefix: chaosPrefix}).NodeNS("member-b", "member-b-n1")
	block := []string{"INPUT", "-p", "udp", "--dport", "4801", "-j", "DROP"}
	if _, err := networld.InNS(n1, append([]string{"iptables", "-I"}, block...)...); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "every agent sends through member-b-n2", func() bool {
		r, err := check.Collect(ctx, c.sb.Topology, c.sb.KubeconfigPath)
		if err != nil {
			return false
		}
		for _, ch := range r.Checks(c.sb.Topology, true) {
			if ch.Name == "cluster member-b gateway choices" {
				return ch.Result == "PASS" && strings.HasSuffix(ch.Detail, "through member-b-n2")
			}
		}
		return false
	})
	if checks, table := run(); !check.WriteChecks(&bytes.Buffer{}, checks) {
		t.Errorf("with member-b-n2 the gateway, the probe table fails:\n%s", table)
	}
	if _, err := networld.InNS(n1, append([]string{"iptables", "-D"}, block...)...); err != nil {
		t.Fatal(err)
	}

	if err := c.sb.StopAgent("member-c", "member-c-n1"); err != nil {
		t.Fatal(err)
	}
	ns := (&networld.World{Prefix: chaosPrefix}).NodeNS("member-c", "member-c-n1")
	deleted := 0
	for _, fam := range []string{"-4", "-6"} {
		for _, dev := range []string{"vx-bridge", "vx-bridge-6"} {
			out, err := networld.InNS(ns, "ip", fam, "-o", "route", "show", "dev", dev)
			if err != nil {
				continue // no such device in this family
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				f := strings.Fields(line)
				if len(f) == 0 || strings.Contains(line, "proto kernel") {
					continue
				}
				if _, err := networld.InNS(ns, "ip", fam, "route", "del", f[0], "dev", dev); err != nil {
					t.Fatalf("delete route %q in %s: %v", line, ns, err)
				}
				deleted++
			}
		}
	}
	if deleted == 0 {
		t.Fatalf("member-c-n1 has no routes over vx-bridge to delete")
	}
	t.Logf("member-c-n1: agent stopped, %d routes deleted", deleted)
	checks, table = run()
	for _, ch := range checks {
		switch {
		case ch.Name == "probe broken pairs":
			for _, want := range []string{"member-c/pod-net → host", "host/pod-net → member-c", "member-c/host-net → member-a", "member-a/pod-net → member-c"} {
				if ch.Result != "FAIL" || !strings.Contains(ch.Detail, want) {
					t.Errorf("the broken pairs row %+v does not name %q", ch, want)
				}
			}
		case strings.HasPrefix(ch.Name, "probe ") && strings.Contains(ch.Name, "→"):
			// Every pair that fails involves member-c; every pair from
			// member-c fails, and every pair to its pod from a pod. (From a
			// remote host network the reply still finds its way: it goes to
			// the sender's vx-bridge address, whose connected route stays.)
			from, to, _ := strings.Cut(strings.TrimPrefix(ch.Name, "probe "), " → ")
			mustFail := strings.HasPrefix(from, "member-c/") || (to == "member-c" && strings.HasSuffix(from, "/pod-net"))
			if ch.Result == "FAIL" && !strings.Contains(ch.Name, "member-c") || mustFail && ch.Result != "FAIL" {
				t.Errorf("row %q is %s: want FAIL exactly for the broken pairs of member-c", ch.Name, ch.Result)
			}
		}
	}
	if t.Failed() {
		t.Logf("the table:\n%s", table)
	}
}
