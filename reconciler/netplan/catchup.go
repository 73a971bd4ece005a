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
// cluster name's gateway in force, or "" without one (see above). An
// agent's report is a move only where its probes took it off the candidate
// its config puts first (Node.GatewaysPlanned): an agent that has not yet
// read a new plan still sends through the gateway the plan just left, and
// must not vote the plan back to it. With no gateway known in force, every
// report counts for the candidate it names. Agents of earlier releases report no
// planned candidate: any candidate other than the gateway in force counts.
// Reports naming a node that is not among the cluster's nodes are not
// counted; a zero now does not check how long a move lasted. It is pure.
func agentsChoice(name string, facts Facts, now time.Time) string {
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
			if moved(n, a) {
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

// aliveInDataPlane says agents still send through candidate gw of Gateway
// cluster name: some agent other than gw's own, of any cluster (the gateway
// cluster's own agents included: they do not vote for a move, but their
// probes reach gw), reports gw as the candidate in use. An agent keeps a
// candidate only while its probes answer, so this is the data plane's
// word that gw is alive: the election keeps such a gateway even when its
// node is NotReady (a kubelet that missed heartbeats, a control plane that
// just came back and sees every node NotReady at once). It is pure.
func aliveInDataPlane(name string, facts Facts, gw string) bool {
	if gw == "" {
		return false
	}
	for cluster, cf := range facts {
		for _, n := range cf.Nodes {
			if cluster == name && n.Name == gw {
				continue // a gateway's word on itself proves nothing
			}
			if n.Gateways[name] == gw {
				return true
			}
		}
	}
	return false
}
