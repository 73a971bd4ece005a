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
	// Down are the candidates its probes find down.
	Down []string
}

// choicesOf reads the gateway choices the NodeConfigs' agents report.
func choicesOf(ncs []v1alpha1.NodeConfig) []AgentChoice {
	var out []AgentChoice
	for _, nc := range ncs {
		for _, g := range nc.Status.Gateways {
			out = append(out, AgentChoice{Node: nc.Name, Gateway: g.Cluster, Active: g.Active, Down: g.Down})
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
		var reports []clusterChoice
		for _, cr := range clusters {
			for _, ch := range cr.Choices {
				if ch.Gateway == c.Name {
					reports = append(reports, clusterChoice{cr.Name, ch})
				}
			}
		}
		by := map[string][]string{} // candidate → agents (cluster/node)
		var cut, stranded []string
		for i, r := range reports {
			if cutOff(reports, i) {
				cut = append(cut, r.Node)
				continue
			}
			if slices.Contains(r.Down, r.Active) { // every candidate down: it keeps the plan's first
				stranded = append(stranded, r.cluster+"/"+r.Node)
			}
			by[r.Active] = append(by[r.Active], r.cluster+"/"+r.Node)
		}
		name := "cluster " + c.Name + " gateway choices"
		switch {
		case len(by) == 0 && len(cut) > 0:
			out = append(out, Check{name, "FAIL", fmt.Sprintf("every agent reporting is cut off from the others (%s): the candidates each send through themselves and find each other down", strings.Join(cut, ", "))})
		case len(by) == 0:
			out = append(out, Check{name, "SKIP", "no agent reports a choice (no data plane, or probing off)"})
		case len(by) == 1 && len(stranded) > 0:
			out = append(out, Check{name, "FAIL", fmt.Sprintf("%s find every candidate down (each keeps the plan's first)", abbreviate(slices.Sorted(slices.Values(stranded)), 4)) + cutNote(cut)})
		case len(by) == 1:
			for active, agents := range by {
				out = append(out, Check{name, "PASS", fmt.Sprintf("all %d agents send through %s", len(agents), active) + cutNote(cut)})
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
				"; connections to pods on the candidates may fail until they agree" + cutNote(cut)})
		}
	}
	return out
}

// cutNote names the candidates cut off, in a row's detail.
func cutNote(cut []string) string {
	if len(cut) == 0 {
		return ""
	}
	return fmt.Sprintf("; %s cut off (it and every other agent find each other down)", strings.Join(cut, ", "))
}

// clusterChoice is an agent's report with its cluster.
type clusterChoice struct {
	cluster string
	AgentChoice
}

// cutOff says whether reports[i] comes from a candidate of the gateway's
// own cluster that is cut off from every other agent: it sends through
// itself, finds down the candidate each other agent uses, and each other
// agent finds it down (its underlay link died, say). Its choice is no
// disagreement: nobody sends through it, and it can send through nobody
// else; the other agents agree or not among themselves.
func cutOff(reports []clusterChoice, i int) bool {
	r := reports[i]
	if r.cluster != r.Gateway || r.Active != r.Node || len(reports) < 2 {
		return false
	}
	for j, o := range reports {
		if j == i {
			continue
		}
		if !slices.Contains(o.Down, r.Node) || !slices.Contains(r.Down, o.Active) {
			return false
		}
	}
	return true
}

// abbreviate joins at most n names and says how many more there are.
func abbreviate(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}
