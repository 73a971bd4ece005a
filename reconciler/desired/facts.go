package desired

import (
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"

	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// FactsOf turns a cluster's Node objects and the NodeConfigs in force into
// the facts the network planner needs (the gateway in force, and which
// nodes run an agent of the earlier contract). Virtual nodes (the tree's) are left
// out: they are member clusters, not machines with a kernel. It is pure.
func FactsOf(nodes []corev1.Node, configs []v1alpha1.NodeConfig) netplan.ClusterFacts {
	var f netplan.ClusterFacts
	for _, n := range nodes {
		if n.Labels[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByTree {
			continue
		}
		nd := netplan.Node{Name: n.Name, Labels: n.Labels}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				nd.InternalIPs = append(nd.InternalIPs, ip)
			}
		}
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		for _, c := range cidrs {
			if p, err := netip.ParsePrefix(c); err == nil {
				nd.PodCIDRs = append(nd.PodCIDRs, p.Masked())
			}
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				nd.Ready, nd.ReadySince = c.Status == corev1.ConditionTrue, c.LastTransitionTime.Time
			}
		}
		f.Nodes = append(f.Nodes, nd)
	}
	legacy, keys, next := map[string]bool{}, map[string]string{}, map[string]string{}
	reported, since := map[string]map[string]string{}, map[string]map[string]time.Time{}
	planned := map[string]map[string]string{}
	down, unproven, split := map[string]map[string][]string{}, map[string]map[string]bool{}, map[string]map[string]string{}
	for _, nc := range configs {
		reported[nc.Name], since[nc.Name] = agentGateways(nc.Status.Gateways)
		planned[nc.Name] = agentPlanned(nc.Status.Gateways, reported[nc.Name])
		down[nc.Name], unproven[nc.Name], split[nc.Name] = agentEvidence(nc.Status.Gateways, reported[nc.Name])
		if w := nc.Status.WireGuard; w != nil && len(w.PublicKey) == v1alpha1.WireGuardPublicKeyLength {
			keys[nc.Name] = w.PublicKey
			if len(w.NextPublicKey) == v1alpha1.WireGuardPublicKeyLength {
				next[nc.Name] = w.NextPublicKey
			}
		}
		if nc.Labels[v1alpha1.LabelRole] == v1alpha1.RoleGateway && nc.Labels[v1alpha1.LabelManagedBy] == v1alpha1.ManagedBy {
			f.Gateway = nc.Name
		}
		legacy[nc.Name] = LegacyAgent(&nc)
	}
	for i := range f.Nodes {
		f.Nodes[i].LegacyAgent = legacy[f.Nodes[i].Name]
		f.Nodes[i].WireGuardKey = keys[f.Nodes[i].Name]
		f.Nodes[i].WireGuardNextKey = next[f.Nodes[i].Name]
		f.Nodes[i].Gateways = reported[f.Nodes[i].Name]
		f.Nodes[i].GatewaysSince = since[f.Nodes[i].Name]
		f.Nodes[i].GatewaysPlanned = planned[f.Nodes[i].Name]
		f.Nodes[i].GatewaysDown = down[f.Nodes[i].Name]
		f.Nodes[i].GatewaysUnproven = unproven[f.Nodes[i].Name]
		f.Nodes[i].GatewaysSplit = split[f.Nodes[i].Name]
	}
	return f
}

// LegacyAgent says a NodeConfig's agent cannot be given a compact
// NodeConfig yet: it reported an apply (condition Applied) without having
// derived from shared objects (status.contract Shared and the ClusterPeers
// it used in status.peers): an agent of the release before the shared
// contract, or a current one that has not read the ClusterPeers yet (it
// would withdraw every cross-cluster route until it does). A NodeConfig no
// agent has reported on (a node that just joined, a cluster without
// agents) is not legacy: its agent, when it comes, is assumed current.
func LegacyAgent(nc *v1alpha1.NodeConfig) bool {
	if nc.Status.Contract == v1alpha1.ContractShared && len(nc.Status.Peers) > 0 {
		return false
	}
	for _, c := range nc.Status.Conditions {
		if c.Type == "Applied" {
			return true
		}
	}
	return false
}

// agentGateways is the candidate an agent reports per cluster and since
// when (the latest move of its devices); a cluster whose devices
// (families) report different candidates gives no answer.
func agentGateways(gs []v1alpha1.GatewayChoice) (map[string]string, map[string]time.Time) {
	var out map[string]string
	var since map[string]time.Time
	split := map[string]bool{}
	for _, g := range gs {
		if out == nil {
			out, since = map[string]string{}, map[string]time.Time{}
		}
		if a, ok := out[g.Cluster]; ok && a != g.Active {
			split[g.Cluster] = true
		}
		out[g.Cluster] = g.Active
		if g.Since.After(since[g.Cluster]) {
			since[g.Cluster] = g.Since.Time
		}
	}
	for c := range split {
		delete(out, c)
		delete(since, c)
	}
	for c, t := range since {
		if t.IsZero() {
			delete(since, c)
		}
	}
	if len(since) == 0 {
		since = nil
	}
	return out, since
}

// agentPlanned is, per cluster the agent gave an answer for (reported, from
// agentGateways), the candidate its config put first when every device
// says the same one (GatewayChoice.Planned); agents of earlier releases
// report none. It is pure.
func agentPlanned(gs []v1alpha1.GatewayChoice, reported map[string]string) map[string]string {
	var out map[string]string
	split := map[string]bool{}
	for _, g := range gs {
		if _, ok := reported[g.Cluster]; !ok || g.Planned == "" {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		if p, ok := out[g.Cluster]; ok && p != g.Planned {
			split[g.Cluster] = true
		}
		out[g.Cluster] = g.Planned
	}
	for c := range split {
		delete(out, c)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
