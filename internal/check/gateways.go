package check

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// AgentChoice is the gateway candidate one agent reports it sends through
// for one Gateway-mode cluster (NodeConfig status.gateways; gateway HA).
type AgentChoice struct {
	// Node is the agent's node; Gateway the Gateway-mode cluster; Active
	// the candidate it uses.
	Node, Gateway, Active string
}

// choicesOf reads the gateway choices the NodeConfigs' agents report.
func choicesOf(ncs []v1alpha1.NodeConfig) []AgentChoice {
	var out []AgentChoice
	for _, nc := range ncs {
		for _, g := range nc.Status.Gateways {
			out = append(out, AgentChoice{Node: nc.Name, Gateway: g.Cluster, Active: g.Active})
		}
	}
	return out
}

// gatewayChecks is one row per Gateway-mode cluster: do the agents of every
// cluster (its own nodes behind it, the other clusters' nodes) send through
// the same candidate? Each agent chooses on its own probes; while they
// disagree (a partial failure one side sees and the other does not), a
// connection may enter the cluster through one candidate and its replies
// leave through another, which breaks connections to pods on the candidate
// nodes themselves (README, Gateway HA). Without reports (no data plane, or
// probing off) the row is SKIP.
func gatewayChecks(t *v1alpha1.KosmosTopology, clusters []ClusterReport) []Check {
	var out []Check
	for _, c := range t.Spec.Clusters {
		if c.Network.Mode != v1alpha1.ModeGateway || !c.NetworkEnabled() {
			continue
		}
		by := map[string][]string{} // candidate → agents (cluster/node)
		for _, cr := range clusters {
			for _, ch := range cr.Choices {
				if ch.Gateway == c.Name {
					by[ch.Active] = append(by[ch.Active], cr.Name+"/"+ch.Node)
				}
			}
		}
		name := "cluster " + c.Name + " gateway choices"
		switch len(by) {
		case 0:
			out = append(out, Check{name, "SKIP", "no agent reports a choice (no data plane, or probing off)"})
		case 1:
			for active, agents := range by {
				out = append(out, Check{name, "PASS", fmt.Sprintf("all %d agents send through %s", len(agents), active)})
			}
		default:
			var parts []string
			for _, active := range slices.SortedFunc(maps.Keys(by), func(a, b string) int {
				return cmp.Or(cmp.Compare(len(by[b]), len(by[a])), cmp.Compare(a, b))
			}) {
				agents := slices.Sorted(slices.Values(by[active]))
				parts = append(parts, fmt.Sprintf("%s by %d (%s)", active, len(agents), abbreviate(agents, 4)))
			}
			out = append(out, Check{name, "FAIL", "agents disagree: " + strings.Join(parts, "; ") +
				"; connections to pods on the candidates may fail until they agree"})
		}
	}
	return out
}

// abbreviate joins at most n names and says how many more there are.
func abbreviate(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}
