package nodeagent

import (
	"slices"
	"strings"
)

// Where the POSTROUTING jump must be (issue 17 review).
//
// The jump to KOSMOS-POSTROUTING is inserted first, but "first" is not
// what matters: its NETMAP and no-masquerade returns must see Kosmos's
// packets before anything rewrites their source. Only a rule that does so
// itself, a terminal MASQUERADE, SNAT or NETMAP, makes the jump misplaced
// when it is above it. A jump to another chain is not: Calico's felix (in
// its default insert mode) re-inserts `-j cali-POSTROUTING` at the top on
// every refresh, and moving Kosmos's jump back above it each pass made the
// two flip-flop for ever; Calico's own masquerade (cali-nat-outgoing) is
// kept off Kosmos's ranges by the disabled IPPools the reconciler writes,
// and kube-proxy's KUBE-POSTROUTING masquerades only packets that
// KUBE-MARK-MASQ marked, which Kosmos's cross-cluster traffic is not.

// ruleTarget is the target of an iptables-save rule (without "-A CHAIN"):
// "-j" or "-g" with the target's name and the options after it; ok is
// false for a rule without one. A "-j" inside a quoted string (a comment,
// a log prefix) is not one (ruleFields).
func ruleTarget(rule string) (flag, name string, opts []string, ok bool) {
	f := ruleFields(rule)
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "-j", "--jump":
			return "-j", f[i+1], f[i+2:], true
		case "-g", "--goto":
			return "-g", f[i+1], f[i+2:], true
		}
	}
	return "", "", nil, false
}

// ruleFields splits an iptables-save rule into its words as the shell
// would: a double-quoted string (iptables-save quotes a comment or a
// prefix that holds spaces, a backslash escaping a quote in it) is one
// word, without its quotes.
func ruleFields(rule string) []string {
	var out []string
	var word strings.Builder
	inWord, quoted, escaped := false, false, false
	for _, r := range rule {
		switch {
		case escaped:
			word.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped, inWord = true, true
		case r == '"':
			quoted, inWord = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				out = append(out, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, word.String())
	}
	return out
}

// rewritesSource tells whether an iptables-save rule (without "-A CHAIN")
// of POSTROUTING rewrites the source of what it matches: its target (-j)
// is MASQUERADE, SNAT or NETMAP. A jump or goto to a chain does not count.
func rewritesSource(rule string) bool {
	flag, name, _, ok := ruleTarget(rule)
	return ok && flag == "-j" && (name == "MASQUERADE" || name == "SNAT" || name == "NETMAP")
}

// postroutingMisplaced tells whether the jump, with the rules above it in
// POSTROUTING, must move back to the top: some rule above it rewrites
// sources (rewritesSource). It is pure.
func postroutingMisplaced(above []string) bool {
	return slices.ContainsFunc(above, rewritesSource)
}

// Where the raw table's jumps must be.
//
// KOSMOS-NOTRACK-IN and -OUT exempt the tunnels' UDP from conntrack; they
// are jumped to first in raw PREROUTING and OUTPUT, the first hooks a
// packet meets. A rule above the jump that ends the table for some packets
// (ACCEPT, DROP, REJECT, RETURN: the chain's policy; a goto, a queue) or
// gives them a conntrack template of its own (-j CT without --notrack: the
// agent's NOTRACK then leaves them as they are) would keep the exemption
// from the tunnels' datagrams it matches, and conntrack would fill again.
// A jump to another chain does not count (felix inserts -j cali-PREROUTING and
// -j cali-OUTPUT first on every refresh), nor does another NOTRACK, which
// untracks what it matches as the agent's would.

// rawVerdict tells whether an iptables-save rule (without "-A CHAIN") of
// the raw table's PREROUTING or OUTPUT ends the table for what it matches
// or sets its conntrack template: ACCEPT, DROP, REJECT, RETURN (the
// policy), NFQUEUE or QUEUE (what userspace accepts goes on at the next
// hook), a goto (a built-in chain's goto never comes back: when the chain
// gone to ends, the policy applies), or CT without --notrack.
func rawVerdict(rule string) bool {
	flag, name, opts, ok := ruleTarget(rule)
	switch {
	case !ok:
		return false
	case flag == "-g":
		return true
	}
	switch name {
	case "ACCEPT", "DROP", "REJECT", "RETURN", "NFQUEUE", "QUEUE":
		return true
	case "CT":
		return !slices.Contains(opts, "--notrack")
	}
	return false
}

// rawMisplaced tells whether the jump to one of the agent's raw chains,
// with the rules above it, must move back to the top (rawVerdict). It is
// pure.
func rawMisplaced(above []string) bool {
	return slices.ContainsFunc(above, rawVerdict)
}
