package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/internal/probe"
	"kosmos.io/kosmos/internal/sandbox"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// probeFlags are the flags of kosmos check --probe.
type probeFlags struct {
	on        bool
	timeout   time.Duration
	image     string
	namespace string
	port      int
	services  bool
}

func (f *probeFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.on, "probe", false, "send real packets: probe pods in every cluster (pod and host network), every pair of clusters both ways (ICMP, TCP and UDP echo); always on in a sandbox with a data plane")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 2*time.Minute, "with --probe: how long the probes may take (the cleanup comes on top)")
	cmd.Flags().StringVar(&f.image, "probe-image", "", "with --probe on real clusters: the Kosmos image (the one the node agents run; default ghcr.io/kosmos-io/kosmos:VERSION of a release build)")
	cmd.Flags().StringVar(&f.namespace, "probe-namespace", probe.DefaultNamespace, "with --probe: the namespace of the probe pods and services (kustomize/base/probe; the reconciler's deletion guard leaves out the prune of the probe services' imports only in kosmos-probe)")
	cmd.Flags().IntVar(&f.port, "probe-port", probe.DefaultPort, "with --probe: TCP and UDP port of the echo servers (also on the host network)")
	cmd.Flags().BoolVar(&f.services, "services", true, "with --probe: also export a short-lived probe Service (MCS ServiceExport) in every cluster and probe its ClusterSetIP from every other cluster (TCP and UDP)")
}

// probeChecks are the probe rows of kosmos check: the sandbox's data plane
// (its network namespaces) when it has one, else probe pods in the real
// clusters with --probe, else none. Ctrl-C stops the probes; their pods
// are deleted all the same.
func probeChecks(ctx context.Context, t *v1alpha1.KosmosTopology, st sandbox.State, kubeconfig string, f probeFlags) ([]check.Check, error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := probe.Options{Timeout: f.timeout, Services: f.services}
	if st.Dataplane {
		nodes, err := sandbox.DataplaneNodes(t, st.Nodes)
		if err != nil {
			return nil, err
		}
		r := &sandbox.NetnsRunner{Prefix: sandbox.NetnsPrefix, Topology: t, Nodes: nodes}
		var dropped *check.Check
		if f.services {
			if r.Clusters, dropped, err = connected(t, kubeconfig, "the service probes"); err != nil {
				return nil, err
			}
		}
		return withDropped(dropped)(probe.Run(ctx, t, r, o))
	}
	if !f.on {
		return nil, nil
	}
	if st.PID != 0 && kubeconfig == st.Kubeconfig {
		return nil, errors.New("--probe in a sandbox needs its data plane (kosmos up --dataplane): its machines run no pods")
	}
	if f.image == "" && version != "dev" {
		f.image = "ghcr.io/kosmos-io/kosmos:" + version // the image of this release, as kustomize/base/common names it
	}
	if f.image == "" {
		return nil, errors.New("--probe needs --probe-image: the Kosmos image the clusters run (the kosmos-agent DaemonSet's); a development build has no default")
	}
	clients, dropped, err := connected(t, kubeconfig, "the probes")
	if err != nil {
		return nil, err
	}
	r := &probe.PodRunner{Topology: t.Name, Clusters: clients, Namespace: f.namespace, Image: f.image, Port: f.port, Deadline: f.timeout + time.Minute}
	return withDropped(dropped)(probe.Run(ctx, t, r, o))
}

// withDropped puts the row naming the clusters left out (if any) first.
func withDropped(row *check.Check) func([]check.Check, error) ([]check.Check, error) {
	return func(checks []check.Check, err error) ([]check.Check, error) {
		if row != nil {
			checks = append([]check.Check{*row}, checks...)
		}
		return checks, err
	}
}

// droppedRow is the "probe clusters" row naming the clusters that could not
// be reached (and so are left out of what), with why; nil when every
// cluster was reached. Without it, "N of N" rows would PASS over the
// clusters that were never probed. Pure.
func droppedRow(clusters []reconciler.Cluster, what string) *check.Check {
	var out []string
	for _, c := range clusters {
		if c.Err != nil {
			out = append(out, fmt.Sprintf("cluster %s: %v", c.Name, c.Err))
		}
	}
	if len(out) == 0 {
		return nil
	}
	return &check.Check{Name: "probe clusters", Result: "FAIL", Detail: fmt.Sprintf("not reached, left out of %s: %s", what, strings.Join(out, "; "))}
}

// connected are the clients of the clusters the kubeconfig reaches, and
// the row naming those it does not (droppedRow).
func connected(t *v1alpha1.KosmosTopology, kubeconfig, what string) (map[string]client.Client, *check.Check, error) {
	clusters, err := reconciler.ConnectContexts(t, kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]client.Client{}
	for _, c := range clusters {
		if c.Err == nil {
			out[c.Name] = c.Client
		}
	}
	return out, droppedRow(clusters, what), nil
}
