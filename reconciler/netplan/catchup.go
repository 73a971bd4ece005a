package netplan

import (
	"maps"
	"slices"
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
// flapping candidate does not move the plan.
const CatchUpHold = 3 * time.Second

// agentsChoice returns the candidate the agents moved to off Gateway
// cluster name's gateway in force, or "" without one (see above). Reports
// naming a node that is not among the cluster's nodes are not counted; a
// zero now does not check how long a move lasted. It is pure.
func agentsChoice(name string, facts Facts, now time.Time) string {
	inForce := facts[name].Gateway
	own := map[string]bool{}
	for _, n := range facts[name].Nodes {
		own[n.Name] = true
	}
	settled := func(n Node) bool {
		since := n.GatewaysSince[name]
		return now.IsZero() || since.IsZero() || now.Sub(since) >= CatchUpHold
	}
	type tally struct {
		votes map[string]int
		total int
	}
	all := tally{votes: map[string]int{}}
	var each []tally
	for _, cluster := range slices.Sorted(maps.Keys(facts)) {
		if cluster == name {
			continue
		}
		t := tally{votes: map[string]int{}}
		for _, n := range facts[cluster].Nodes {
			a, ok := n.Gateways[name]
			if !ok || !own[a] {
				continue
			}
			t.total++
			all.total++
			if a != inForce && settled(n) {
				t.votes[a]++
				all.votes[a]++
			}
		}
		each = append(each, t)
	}
	for _, t := range append([]tally{all}, each...) {
		for _, a := range slices.Sorted(maps.Keys(t.votes)) {
			if 2*t.votes[a] > t.total {
				return a
			}
		}
	}
	return ""
}

// gatewayInForce is the gateway the election starts from: the one the
// agents moved to (agentsChoice), else the one in force.
func gatewayInForce(name string, facts Facts, now time.Time) string {
	if a := agentsChoice(name, facts, now); a != "" {
		return a
	}
	return facts[name].Gateway
}
