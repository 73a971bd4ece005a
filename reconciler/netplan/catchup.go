package netplan

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// The control plane catches up with gateway HA. Each agent probes the
// gateway candidates it may send through and moves on its own when one
// stops answering (nodeagent/failover.go); it reports the candidate it uses
// per Gateway-mode cluster in its NodeConfig status (Node.Gateways, and
// since when: Node.GatewaysSince). The planner takes a candidate as the
// gateway in force (and electGateway keeps it, sticky) when a strict
// majority of the reporting agents of one remote cluster, or of the remote
// clusters taken together, have left the gateway in force for that one
// same candidate, each for longer than CatchUpHold: the plan follows the
// data plane and never pulls it back.
//
// The gateway cluster's own nodes do not vote: their probes test only
// their way to the gateway (vx-local), not the cross-cluster tunnels, and
// a large cluster would outvote the remote clusters whose probes failed,
// leaving them an asymmetric, dead return path.

// CatchUpHold is how long an agent's move must have lasted before it
// counts for the catch-up: the agents' default failback hold, so that a
// flapping candidate does not move the plan. It is measured against
// Node.GatewaysSince, which the agent writes from its own clock (whole
// seconds): with clocks out of step by more than a second or so a move
// counts that much early or late. Timing moves from when the reconciler
// saw the status change would need its NodeConfig watch's view carried
// into the facts; not done: nodes are expected to run NTP (README).
const CatchUpHold = 3 * time.Second

// agentsChoice returns the candidate the agents moved to off Gateway
// cluster name's gateway in force, or "" without one (see above). An
// agent's report is a move only where its probes took it off the candidate
// its config puts first (Node.GatewaysPlanned): an agent that has not yet
// read a new plan still sends through the gateway the plan just left, and
// must not vote the plan back to it. With no gateway known in force, every
// report counts for the candidate it names. Agents of earlier releases report no
// planned candidate: any candidate other than the gateway in force counts.
// Reports naming a node that is not among the cluster's nodes are not
// counted; a zero now does not check how long a move lasted.
//
// A split is no move: when most reporting agents of one remote cluster
// moved to another candidate than the one found, or find it down
// (Node.GatewaysDown), the remote clusters reach different candidates
// (asymmetric reachability). Following either side would only make the
// other side's agents move back at the next pass, the plan flipping
// between them and rewriting every NodeConfig and ClusterPeers each time;
// the gateway in force stays, and the second result names the split (a
// plan problem; `kosmos check` fails on it too). It is pure.
func agentsChoice(name string, facts Facts, now time.Time) (string, string) {
	inForce := facts[name].Gateway
	own := map[string]bool{}
	for _, n := range facts[name].Nodes {
		own[n.Name] = true
	}
	moved := func(n Node, a string) bool {
		if inForce == "" {
			return true // none known in force (its NodeConfigs unread): where the agents send is the best word
		}
		if a == inForce {
			return false
		}
		if p := n.GatewaysPlanned[name]; p != "" && p == a {
			return false
		}
		since := n.GatewaysSince[name]
		return now.IsZero() || since.IsZero() || now.Sub(since) >= CatchUpHold
	}
	type tally struct {
		cluster string
		votes   map[string]int
		down    map[string]int // agents that find a candidate down
		total   int
	}
	all := tally{votes: map[string]int{}}
	var each []tally
	for _, cluster := range slices.Sorted(maps.Keys(facts)) {
		if cluster == name {
			continue
		}
		t := tally{cluster: cluster, votes: map[string]int{}, down: map[string]int{}}
		for _, n := range facts[cluster].Nodes {
			a, ok := n.Gateways[name]
			if !ok || !own[a] {
				continue
			}
			t.total++
			all.total++
			if moved(n, a) {
				t.votes[a]++
				all.votes[a]++
			}
			for _, d := range slices.Compact(slices.Sorted(slices.Values(n.GatewaysDown[name]))) {
				t.down[d]++
			}
		}
		if t.total > 0 {
			each = append(each, t)
		}
	}
	pick, by := "", ""
	for _, t := range append([]tally{all}, each...) {
		for _, a := range slices.Sorted(maps.Keys(t.votes)) {
			if pick == "" && 2*t.votes[a] > t.total {
				pick, by = a, t.cluster
			}
		}
	}
	if pick == "" {
		return "", ""
	}
	if by == "" {
		by = "the remote clusters together"
	}
	keeps := "the gateway in force " + inForce
	if inForce == "" {
		keeps = "no candidate the agents moved to"
	}
	for _, t := range each {
		for _, b := range slices.Sorted(maps.Keys(t.votes)) {
			if b != pick && 2*t.votes[b] > t.total {
				return "", fmt.Sprintf("cluster %s: gateway split: most agents of %s moved to %s, most of cluster %s to %s; the plan keeps %s until they agree", name, by, pick, t.cluster, b, keeps)
			}
		}
		if 2*t.down[pick] > t.total {
			return "", fmt.Sprintf("cluster %s: gateway split: most agents of %s moved to %s, most of cluster %s find %s down; the plan keeps %s until they agree", name, by, pick, t.cluster, pick, keeps)
		}
	}
	return pick, ""
}

// gatewayInForce is the gateway the election starts from: the one the
// agents moved to (agentsChoice), else the one in force; and the split,
// if any, that agentsChoice found.
func gatewayInForce(name string, facts Facts, now time.Time) (string, string) {
	if a, split := agentsChoice(name, facts, now); a != "" || split != "" {
		if a == "" {
			a = facts[name].Gateway
		}
		return a, split
	}
	return facts[name].Gateway, ""
}

// aliveInDataPlane says agents still send through candidate gw of Gateway
// cluster name: the agent of some Ready node other than gw, of any cluster
// (the gateway cluster's own agents included: they do not vote for a move,
// but their probes reach gw), reports gw as the candidate in use, has had
// its answer since it chose gw (Node.GatewaysUnproven: an agent that just
// started uses the plan's first candidate unprobed) and does not find it
// down (an agent keeps its candidate when every one is down). Such an
// agent keeps a candidate only while its probes answer, so this is the
// data plane's word that gw is alive: the election keeps such a gateway
// even when its node is NotReady (a kubelet that missed heartbeats, a
// control plane that just came back and sees every node NotReady at
// once). A NotReady node's report may be as old as its last heartbeat:
// it does not count. It is pure.
func aliveInDataPlane(name string, facts Facts, gw string) bool {
	if gw == "" {
		return false
	}
	for cluster, cf := range facts {
		for _, n := range cf.Nodes {
			if cluster == name && n.Name == gw {
				continue // a gateway's word on itself proves nothing
			}
			if n.Ready && n.Gateways[name] == gw && !n.GatewaysUnproven[name] && !slices.Contains(n.GatewaysDown[name], gw) {
				return true
			}
		}
	}
	return false
}

// familySplits names the agents whose families send through different
// candidates of Gateway cluster name (Node.GatewaysSplit), or "": the
// plan elects one gateway for both families, so such an agent is a
// problem to show (and no sign that any candidate is alive). It is pure.
func familySplits(name string, facts Facts) string {
	var who []string
	for _, cluster := range slices.Sorted(maps.Keys(facts)) {
		for _, n := range facts[cluster].Nodes {
			if s := n.GatewaysSplit[name]; s != "" {
				who = append(who, fmt.Sprintf("%s/%s (%s)", cluster, n.Name, s))
			}
		}
	}
	if len(who) == 0 {
		return ""
	}
	slices.Sort(who)
	more := ""
	if len(who) > 3 {
		more = fmt.Sprintf(" and %d more", len(who)-3)
		who = who[:3]
	}
	return fmt.Sprintf("cluster %s: agents send through different gateway candidates per IP family: %s%s; the plan elects one gateway for both", name, strings.Join(who, ", "), more)
}
