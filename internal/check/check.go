// Package check is what `kosmos check` reads of an installation and judges:
// per cluster, reachable, NodeConfigs per machine, applied by the agents,
// gateways elected, virtual nodes Ready (Collect, Checks), printed as a
// table. The sandbox uses it to wait until it is ready; the rows of real
// packets (the sandbox's data plane, kosmos check --probe) come from
// internal/probe.
package check

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree"
)

// ClusterReport is what `kosmos check` and `kosmos up` show of a cluster.
type ClusterReport struct {
	Name, Role, Mode string
	Err              string // unreachable: why
	Nodes            int    // machines (not virtual nodes)
	NodeConfigs      int
	Applied          int // NodeConfigs an agent reported Applied
	Gateways         []string
	// Imports are the ServiceImports Kosmos keeps in the cluster.
	Imports []ImportReport
	// PeersShards are the ClusterPeers objects of the topology in the
	// cluster; Agents what its NodeConfigs of the shared contract report.
	PeersShards []PeersShard
	Agents      []AgentPeers
	// Choices are the gateway candidates its agents report they send
	// through (gateway HA), per Gateway-mode cluster.
	Choices []AgentChoice
}

// VirtualNodeReport is one virtual node in the host.
type VirtualNodeReport struct {
	Name, Cluster, Ready, CPU, Memory string
}

// Report is the state of a Kosmos installation, read from its clusters.
type Report struct {
	Clusters     []ClusterReport
	VirtualNodes []VirtualNodeReport
	Policies     []string
	Services     []string
}

// Collect reads the clusters of t through the kubeconfig's contexts.
func Collect(ctx context.Context, t *v1alpha1.KosmosTopology, kubeconfig string) (Report, error) {
	clusters, err := reconciler.ConnectContexts(t, kubeconfig)
	if err != nil {
		return Report{}, err
	}
	var r Report
	for i, c := range t.Spec.Clusters {
		cr := ClusterReport{Name: c.Name, Role: string(c.Role), Mode: string(c.Network.Mode)}
		cl := clusters[i]
		if cl.Err != nil {
			cr.Err = cl.Err.Error()
			r.Clusters = append(r.Clusters, cr)
			continue
		}
		if err := collectCluster(ctx, cl.Client, &cr, c.Network.Mode == v1alpha1.ModeGateway, t.Name); err != nil {
			cr.Err = err.Error()
		} else if cr.Imports, err = collectImports(ctx, cl.Client, t.Name); err != nil {
			cr.Err = err.Error()
		}
		if c.Role == v1alpha1.RoleHost && cr.Err == "" {
			vns, err := virtualNodes(ctx, cl.Client)
			if err != nil {
				cr.Err = err.Error()
			}
			r.VirtualNodes = vns
		}
		r.Clusters = append(r.Clusters, cr)
	}
	for _, p := range t.Spec.DistributionPolicies {
		r.Policies = append(r.Policies, p.Name)
	}
	for _, s := range t.Spec.Services {
		r.Services = append(r.Services, s.Namespace+"/"+s.Name)
	}
	return r, nil
}

func collectCluster(ctx context.Context, c client.Client, cr *ClusterReport, gatewayMode bool, topology string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return err
	}
	for _, n := range nodes.Items {
		if n.Labels[tree.LabelManagedBy] != tree.ManagedBy {
			cr.Nodes++
		}
	}
	var ncs v1alpha1.NodeConfigList
	if err := c.List(ctx, &ncs); err != nil {
		return err
	}
	cr.NodeConfigs = len(ncs.Items)
	cr.Choices = choicesOf(ncs.Items)
	for _, nc := range ncs.Items {
		if meta.IsStatusConditionTrue(nc.Status.Conditions, "Applied") {
			cr.Applied++
		}
		if gatewayMode && slices.ContainsFunc(nc.Spec.Devices, func(d v1alpha1.Device) bool {
			return d.Name == v1alpha1.DeviceBridge || d.Name == v1alpha1.DeviceBridge6
		}) {
			cr.Gateways = append(cr.Gateways, nc.Name)
		}
	}
	return collectPeers(ctx, c, topology, ncs.Items, cr)
}

func virtualNodes(ctx context.Context, c client.Client) ([]VirtualNodeReport, error) {
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes, client.MatchingLabels{tree.LabelManagedBy: tree.ManagedBy}); err != nil {
		return nil, err
	}
	var out []VirtualNodeReport
	for _, n := range nodes.Items {
		v := VirtualNodeReport{Name: n.Name, Cluster: n.Labels[tree.LabelCluster], Ready: "Unknown",
			CPU: n.Status.Allocatable.Cpu().String(), Memory: n.Status.Allocatable.Memory().String()}
		for _, cd := range n.Status.Conditions {
			if cd.Type == corev1.NodeReady {
				v.Ready = string(cd.Status)
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// WriteTable prints the report as tables.
func (r Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tROLE\tMODE\tNODES\tNODECONFIGS\tGATEWAYS\tSTATE")
	for _, c := range r.Clusters {
		state := "ok"
		if c.Err != "" {
			state = "unreachable: " + c.Err
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", c.Name, c.Role, dash(c.Mode), c.Nodes, c.NodeConfigs, dash(strings.Join(c.Gateways, ",")), state)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VIRTUAL NODE\tCLUSTER\tREADY\tCPU\tMEMORY")
	for _, v := range r.VirtualNodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, v.Cluster, v.Ready, v.CPU, v.Memory)
	}
	tw.Flush()
	fmt.Fprintf(w, "\npolicies: %s\nexported services: %s\n", dash(strings.Join(r.Policies, ", ")), dash(strings.Join(r.Services, ", ")))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Check is one line of `kosmos check`.
type Check struct {
	Name   string
	Result string // PASS, FAIL or SKIP
	Detail string
}

// Checks judges the report: every cluster answers; every machine has its
// NodeConfig; every Gateway-mode cluster has a gateway; every member with a
// tree has Ready virtual nodes; NodeConfigs are applied by the node agents;
// every cluster holds every other's complete ClusterPeers shard set and its
// agents applied their current generations (peersChecks); the agents agree
// on each Gateway-mode cluster's gateway (gatewayChecks).
// Without agents (a sandbox without a data plane), the last is SKIP where
// none reported; with agents expected, a cluster where none reported fails.
func (r Report) Checks(t *v1alpha1.KosmosTopology, agents bool) []Check {
	var out []Check
	add := func(name string, ok bool, detail string) {
		res := "PASS"
		if !ok {
			res = "FAIL"
		}
		out = append(out, Check{name, res, detail})
	}
	mode := map[string]v1alpha1.NetworkMode{}
	for _, c := range t.Spec.Clusters {
		mode[c.Name] = c.Network.Mode
	}
	for _, c := range r.Clusters {
		add("cluster "+c.Name+" reachable", c.Err == "", c.Err)
		if c.Err != "" {
			continue
		}
		add("cluster "+c.Name+" NodeConfigs", c.NodeConfigs == c.Nodes, fmt.Sprintf("%d NodeConfigs for %d nodes", c.NodeConfigs, c.Nodes))
		if mode[c.Name] == v1alpha1.ModeGateway {
			add("cluster "+c.Name+" gateway", len(c.Gateways) > 0, "gateways: "+dash(strings.Join(c.Gateways, ",")))
		}
		switch {
		case c.Applied == 0 && !agents:
			out = append(out, Check{"cluster " + c.Name + " NodeConfigs applied", "SKIP", "no node agent has reported (no data plane: kosmos up --dataplane)"})
		case c.Applied == 0 && c.NodeConfigs > 0:
			add("cluster "+c.Name+" NodeConfigs applied", false, fmt.Sprintf("no node agent has reported on any of %d NodeConfigs: are the agents running? (their logs, kubectl -n kosmos-system get pods)", c.NodeConfigs))
		default:
			add("cluster "+c.Name+" NodeConfigs applied", c.Applied == c.NodeConfigs, fmt.Sprintf("%d of %d applied", c.Applied, c.NodeConfigs))
		}
		out = append(out, peersChecks(t, c, agents)...)
	}
	out = append(out, gatewayChecks(t, r.Clusters)...)
	ready := map[string]int{}
	for _, v := range r.VirtualNodes {
		if v.Ready == string(corev1.ConditionTrue) {
			ready[v.Cluster]++
		}
	}
	for _, c := range t.Spec.Clusters {
		if c.Role == v1alpha1.RoleHost || (c.Tree.Enabled != nil && !*c.Tree.Enabled) {
			continue
		}
		add("member "+c.Name+" virtual nodes Ready", ready[c.Name] > 0, fmt.Sprintf("%d Ready", ready[c.Name]))
	}
	return out
}

// WriteChecks prints the checks as a table and tells whether all passed
// (SKIP counts as passed).
func WriteChecks(w io.Writer, checks []Check) bool {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tDETAIL")
	ok := true
	for _, c := range checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.Result, c.Detail)
		ok = ok && c.Result != "FAIL"
	}
	tw.Flush()
	return ok
}
