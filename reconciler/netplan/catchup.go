package netplan

import (
	"maps"
	"slices"
)

// The control plane catches up with gateway HA. Each agent probes the
// gateway candidates it may send through and moves on its own when one
// stops answering (nodeagent/failover.go); it reports the candidate it uses
// per Gateway-mode cluster in its NodeConfig status (Node.Gateways). When
// most of the agents that report on a cluster have moved off the gateway in
// force to one same candidate, the planner takes that candidate as the
// gateway in force (and electGateway keeps it, sticky): the plan follows
// the data plane and never pulls it back.

// agentsChoice returns the candidate a strict majority of the agents that
// report on Gateway cluster name send through, or "" without one. Reports
// naming a node that is not among the cluster's nodes are not counted. It
// is pure.
func agentsChoice(name string, facts Facts) string {
	own := map[string]bool{}
	for _, n := range facts[name].Nodes {
		own[n.Name] = true
	}
	votes := map[string]int{}
	total := 0
	for _, cluster := range slices.Sorted(maps.Keys(facts)) {
		for _, n := range facts[cluster].Nodes {
			if a, ok := n.Gateways[name]; ok && own[a] {
				votes[a]++
				total++
			}
		}
	}
	for _, a := range slices.Sorted(maps.Keys(votes)) {
		if 2*votes[a] > total {
			return a
		}
	}
	return ""
}

// gatewayInForce is the gateway the election starts from: the one the
// agents moved to when most of them did, else the one in force.
func gatewayInForce(name string, facts Facts) string {
	if a := agentsChoice(name, facts); a != "" {
		return a
	}
	return facts[name].Gateway
}
