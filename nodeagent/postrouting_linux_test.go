package nodeagent

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinuxPostroutingJumpKeptFirst: the jump to KOSMOS-POSTROUTING is
// first in POSTROUTING, and stays first: a MASQUERADE a CNI inserts at
// position 1 after the agent ran makes the next pass move the jump back
// above it (one chain transaction, the CNI's rule kept, right behind);
// then nothing changes. Before, Read did not compare the jump's position
// and the CNI's MASQUERADE saw every packet before the agent's NETMAP and
// no-masquerade returns.
func TestLinuxPostroutingJumpKeptFirst(t *testing.T) {
	lk := freshKernel(t)
	spec := natConfig(2)
	if _, err := Set(lk, spec); err != nil {
		t.Fatal(err)
	}
	postrouting := func() string {
		t.Helper()
		out, err := exec.Command("iptables", "-w", "-t", "nat", "-S", "POSTROUTING").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables -S POSTROUTING: %v %s", err, out)
		}
		return string(out)
	}
	if out, err := exec.Command("iptables", "-w", "-t", "nat", "-I", "POSTROUTING", "1", "-s", "10.244.0.0/16", "!", "-d", "10.244.0.0/16", "-j", "MASQUERADE").CombinedOutput(); err != nil {
		t.Fatalf("insert the CNI's MASQUERADE: %v %s", err, out)
	}
	t.Logf("after the CNI:\n%s", postrouting())
	res, err := Set(lk, spec)
	if err != nil || len(res.Applied) != 1 || res.Applied[0].Chains == nil {
		t.Fatalf("the next pass wrote %v (err %v); want one chain transaction that moves the jump", res.Applied, err)
	}
	want := "-A POSTROUTING -j KOSMOS-POSTROUTING\n-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE\n"
	if got := postrouting(); !strings.HasSuffix(got, want) || strings.Count(got, "-j KOSMOS-POSTROUTING") != 1 {
		t.Errorf("POSTROUTING after the pass:\n%s\nwant it to end with\n%s", got, want)
	}
	if res, err := Set(lk, spec); err != nil || len(res.Applied) != 0 {
		t.Errorf("repeat: writes %v, err %v", res.Applied, err)
	}
}

// TestJumpMarkPostroutingFirst: the position of the jump to
// KOSMOS-POSTROUTING is part of the state read: it is
// misplaced below a MASQUERADE, not below Calico's cali-POSTROUTING jump
// (felix re-inserts it first on every refresh); KOSMOS-PREROUTING's jump (kube-proxy's KUBE-SERVICES may go
// above it) is only checked for being there.
func TestJumpMarkPostroutingFirst(t *testing.T) {
	for _, tc := range []struct {
		chain string
		rules []string
		want  string
	}{
		{ChainPostrouting, []string{"-j KOSMOS-POSTROUTING", "-j MASQUERADE"}, ""},
		{ChainPostrouting, []string{"-j MASQUERADE", "-j KOSMOS-POSTROUTING"}, "(jump from POSTROUTING misplaced)"},
		{ChainPostrouting, []string{"-j KUBE-POSTROUTING"}, "(no jump from POSTROUTING)"},
		{ChainPostrouting, []string{"-j cali-POSTROUTING", "-j KOSMOS-POSTROUTING", "-j MASQUERADE"}, ""},
		{ChainPrerouting, []string{"-j KUBE-SERVICES", "-j KOSMOS-PREROUTING"}, ""},
	} {
		c := &Chain{Family: "ipv4", Table: "nat", Name: tc.chain}
		if got := jumpMark(c, tc.rules); got != tc.want {
			t.Errorf("%s among %q: %q, want %q", tc.chain, tc.rules, got, tc.want)
		}
	}
}

// TestLinuxPostroutingCalicoJumpAbove: felix (insert mode) puts its jump to
// cali-POSTROUTING first again on every refresh; the agent leaves its own
// jump below it (no write), so the two do not take turns at the top.
func TestLinuxPostroutingCalicoJumpAbove(t *testing.T) {
	lk := freshKernel(t)
	spec := natConfig(2)
	if _, err := Set(lk, spec); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-N", "cali-POSTROUTING"}, {"-I", "POSTROUTING", "1", "-j", "cali-POSTROUTING"}} {
		if out, err := exec.Command("iptables", append([]string{"-w", "-t", "nat"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("iptables %v: %v %s", args, err, out)
		}
	}
	for pass := range 2 {
		if res, err := Set(lk, spec); err != nil || len(res.Applied) != 0 {
			t.Errorf("pass %d below cali-POSTROUTING: writes %v, err %v; want none", pass, res.Applied, err)
		}
	}
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S", "POSTROUTING").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "-A POSTROUTING -j cali-POSTROUTING\n-A POSTROUTING -j KOSMOS-POSTROUTING\n") {
		t.Errorf("POSTROUTING: %v\n%s", err, out)
	}
}

// TestLinuxNoTrackJumpKeptFirst: the jumps to KOSMOS-NOTRACK-IN and -OUT
// stay first in the raw table: an ACCEPT an admin inserts at position 1 of
// raw PREROUTING (which would keep the tunnels' datagrams it matches
// tracked) makes the next pass move the jump back above it, in one chain
// transaction, the admin's rule kept right behind; then nothing changes.
// A jump to felix's cali-OUTPUT above the other jump changes nothing.
// Before, the raw jumps were only checked for being there.
func TestLinuxNoTrackJumpKeptFirst(t *testing.T) {
	lk := freshKernel(t)
	spec := natConfig(2)
	if _, err := Set(lk, spec); err != nil {
		t.Fatal(err)
	}
	raw := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("iptables", append([]string{"-w", "-t", "raw"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("iptables -t raw %v: %v %s", args, err, out)
		}
		return string(out)
	}
	raw("-I", "PREROUTING", "1", "-p", "udp", "-j", "ACCEPT")
	raw("-N", "cali-OUTPUT")
	raw("-I", "OUTPUT", "1", "-j", "cali-OUTPUT")
	res, err := Set(lk, spec)
	if err != nil || len(res.Applied) != 1 || res.Applied[0].Chains == nil {
		t.Fatalf("the next pass wrote %v (err %v); want one chain transaction that moves the jump", res.Applied, err)
	}
	if got, want := raw("-S", "PREROUTING"), "-A PREROUTING -j KOSMOS-NOTRACK-IN\n-A PREROUTING -p udp -j ACCEPT\n"; !strings.HasSuffix(got, want) || strings.Count(got, "-j KOSMOS-NOTRACK-IN") != 1 {
		t.Errorf("raw PREROUTING after the pass:\n%s\nwant it to end with\n%s", got, want)
	}
	if got, want := raw("-S", "OUTPUT"), "-A OUTPUT -j cali-OUTPUT\n-A OUTPUT -j KOSMOS-NOTRACK-OUT\n"; !strings.HasSuffix(got, want) {
		t.Errorf("raw OUTPUT after the pass:\n%s\nwant it to end with\n%s", got, want)
	}
	if res, err := Set(lk, spec); err != nil || len(res.Applied) != 0 {
		t.Errorf("repeat: writes %v, err %v", res.Applied, err)
	}
}
