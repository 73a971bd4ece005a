package nodeagent

import "strings"

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

// rewritesSource tells whether an iptables-save rule (without "-A CHAIN")
// of POSTROUTING rewrites the source of what it matches: its target (-j)
// is MASQUERADE, SNAT or NETMAP. A jump or goto to a chain does not count.
func rewritesSource(rule string) bool {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "--jump" {
			switch f[i+1] {
			case "MASQUERADE", "SNAT", "NETMAP":
				return true
			}
			return false
		}
	}
	return false
}

// postroutingMisplaced tells whether the jump, with the rules above it in
// POSTROUTING, must move back to the top: some rule above it rewrites
// sources (rewritesSource). It is pure.
func postroutingMisplaced(above []string) bool {
	for _, r := range above {
		if rewritesSource(r) {
			return true
		}
	}
	return false
}
