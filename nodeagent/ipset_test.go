package nodeagent

import (
	"slices"
	"testing"
)

// TestSetOrder: a peer moving from the clear set to the encrypted one is
// in the new set, and the rule matching it written, before it leaves the
// old set; a set no longer wanted goes after the rules that match it.
// Before the fix the removal ran first, and the peer's VXLAN met the DROP
// until the chains were written.
func TestSetOrder(t *testing.T) {
	peer := func(name string, members ...string) IPSet {
		return IPSet{Name: name, Family: "ipv4", Type: setHashIP, Members: members}
	}
	rule := func(set string) string {
		return "-p udp -m udp --dport 4876 -m set --match-set " + set + " src -j RETURN"
	}
	input := func(rules ...string) []Chain {
		return []Chain{{Family: "ipv4", Table: "filter", Name: ChainInput, Rules: rules}}
	}
	current := State{Sets: []IPSet{peer("KOSMOS-PEER4-4876", "192.168.0.21", "192.168.0.31"), peer("KOSMOS-PEER4-4877", "192.168.0.41")}, Chains: input(rule("KOSMOS-PEER4-4876"), rule("KOSMOS-PEER4-4877"))}
	desired := State{Sets: []IPSet{peer("KOSMOS-PEER4-4876", "192.168.0.31"), peer("KOSMOS-WGPEER4-4876", "192.168.0.21")}, Chains: input(rule("KOSMOS-PEER4-4876"), "-i vx-wg "+rule("KOSMOS-WGPEER4-4876"))}
	var got []string
	for _, op := range Diff(current, desired) {
		got = append(got, op.String())
	}
	want := []string{
		"add ipset KOSMOS-WGPEER4-4876 (ipv4 hash:ip, 1 members)",
		"set chains ipv4/filter: KOSMOS-INPUT (2 rules)",
		"set ipset KOSMOS-PEER4-4876 (+0 −1 members)",
		"del ipset KOSMOS-PEER4-4877 (ipv4 hash:ip, 1 members)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("writes\n%q\nwant\n%q", got, want)
	}
	// And the fake kernel, which refuses to destroy a set a rule matches,
	// takes them in that order.
	k := &FakeKernel{S: current}
	for _, op := range Diff(current, desired) {
		if err := k.Apply(op); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := k.Read(); st.String() != desired.String() {
		t.Errorf("kernel\n%s\nwant\n%s", st, desired)
	}
}

// TestSetMembers: prefixes are held canonical, sorted, once; a /0, which
// hash:net cannot hold, as its two halves.
func TestSetMembers(t *testing.T) {
	got := setMembers(pfx("10.1.2.0/24", "10.1.2.3/24", "0.0.0.0/0", "::/0", "fd00::/8"))
	want := []string{"0.0.0.0/1", "10.1.2.0/24", "128.0.0.0/1", "8000::/1", "::/1", "fd00::/8"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
