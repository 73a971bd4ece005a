package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// loadTopology loads a topology file; problems are exit 1, I/O exit 2.
func loadTopology(path string) (*v1alpha1.KosmosTopology, error) {
	if path == "" {
		return nil, &exitError{exitError2, errors.New("no topology given; use -f FILE")}
	}
	t, err := schema.LoadFile(path)
	var ps schema.Problems
	switch {
	case errors.As(err, &ps):
		return nil, &exitError{exitInvalid, fmt.Errorf("invalid topology, nothing done:\n%s", ps.Error())}
	case err != nil:
		return nil, &exitError{exitError2, err}
	}
	return t, nil
}

// observeAll reaches every cluster through its context and reads its facts;
// it fails when any cluster cannot be observed.
func observeAll(ctx context.Context, t *v1alpha1.KosmosTopology, kubeconfig string) (netplan.Facts, error) {
	clusters, err := reconciler.ConnectContexts(t, kubeconfig)
	if err != nil {
		return nil, &exitError{exitError2, err}
	}
	facts := netplan.Facts{}
	var errs []error
	for _, c := range clusters {
		if c.Err != nil {
			errs = append(errs, c.Err)
			continue
		}
		f, err := reconciler.Observe(ctx, c.Client)
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", c.Name, err))
			continue
		}
		facts[c.Name] = f
	}
	if len(errs) > 0 {
		return nil, &exitError{exitError2, errors.Join(errs...)}
	}
	return facts, nil
}

func newRenderCommand() *cobra.Command {
	var file, factsFile, kubeconfig, output string
	cmd := &cobra.Command{
		Use:   "render -f FILE [--facts FACTS]",
		Short: "Print the objects the topology wants in every cluster",
		Long: `Render plans the desired objects of every cluster (namespace, NodeConfigs,
and in the host the Cluster and DistributionPolicy objects) with defaults
applied. The facts (nodes, addresses, pod CIDRs, gateways) come from --facts,
a file captured by 'kosmos facts', or else from the clusters themselves,
reached through the contexts the topology names.`,
		Example: `  kosmos render -f topology.yaml --facts facts.yaml
  kosmos render -f topology.yaml -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := loadTopology(file)
			if err != nil {
				return err
			}
			var facts netplan.Facts
			if factsFile != "" {
				data, err := os.ReadFile(factsFile)
				if err != nil {
					return &exitError{exitError2, err}
				}
				if facts, err = reconciler.LoadFacts(data); err != nil {
					return &exitError{exitError2, err}
				}
			} else if facts, err = observeAll(cmd.Context(), t, kubeconfig); err != nil {
				return err
			}
			out, err := reconciler.Render(desired.Compute(t, facts), output == "json")
			if err != nil {
				return &exitError{exitError2, err}
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "topology file")
	cmd.Flags().StringVar(&factsFile, "facts", "", "facts file from 'kosmos facts' (offline)")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig holding the topology's contexts (default: KUBECONFIG rules)")
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "yaml or json")
	return cmd
}

func newFactsCommand() *cobra.Command {
	var file, kubeconfig string
	cmd := &cobra.Command{
		Use:   "facts -f FILE",
		Short: "Capture the observed facts of every cluster (for offline render and diff)",
		Long: `Facts reads, from every cluster of the topology, what the planners need:
nodes with their InternalIPs, pod CIDRs, readiness and labels, and the gateway
in force. The output holds no credential; keep it beside the topology to
preview changes without cluster access.`,
		Example: `  kosmos facts -f topology.yaml > facts.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := loadTopology(file)
			if err != nil {
				return err
			}
			facts, err := observeAll(cmd.Context(), t, kubeconfig)
			if err != nil {
				return err
			}
			y, err := yaml.Marshal(facts)
			if err != nil {
				return &exitError{exitError2, err}
			}
			_, err = cmd.OutOrStdout().Write(y)
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "topology file")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig holding the topology's contexts")
	return cmd
}

func newApplyCommand() *cobra.Command {
	var file, kubeconfig string
	var prune bool
	var concurrency int
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Make every cluster hold the topology's desired state, once",
		Long: `Apply does one reconcile pass from the CLI: it installs the Kosmos CRDs,
observes every cluster, plans, and server-side applies (field manager
"kosmos") only what differs, clusters in parallel. With --prune (the default)
it deletes objects that carry both Kosmos ownership labels of this topology
and are no longer desired; nothing else is ever deleted. An unchanged
topology makes no write request.

It refuses to run when a cluster cannot be reached: without its facts, its
peers would lose their routes to it. Exit status: 0 done, 1 invalid topology
or a cluster failed, 2 usage error or a cluster unreachable.`,
		Example: `  kosmos apply -f topology.yaml
  kosmos apply -f topology.yaml --kubeconfig ~/.kube/clusters --prune=false`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := loadTopology(file)
			if err != nil {
				return err
			}
			clusters, err := reconciler.ConnectContexts(t, kubeconfig)
			if err != nil {
				return &exitError{exitError2, err}
			}
			var unreachable []error
			for _, c := range clusters {
				if c.Err != nil {
					unreachable = append(unreachable, c.Err)
				}
			}
			if len(unreachable) > 0 {
				return &exitError{exitError2, fmt.Errorf("nothing applied: %w", errors.Join(unreachable...))}
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			rep := reconciler.Pass(ctx, t, clusters, reconciler.PassOptions{Prune: prune, Concurrency: concurrency})
			out := cmd.OutOrStdout()
			for _, p := range rep.Problems {
				fmt.Fprintln(out, "problem:", p)
			}
			failed := 0
			for _, c := range rep.Clusters {
				r := c.Result
				fmt.Fprintf(out, "cluster %s: %d created, %d updated, %d pruned, %d unchanged\n", c.Name, len(r.Created), len(r.Updated), len(r.Pruned), len(r.Unchanged))
				for _, k := range r.Created {
					fmt.Fprintf(out, "  + %s\n", k)
				}
				for _, k := range r.Updated {
					fmt.Fprintf(out, "  ~ %s\n", k)
				}
				for _, k := range r.Pruned {
					fmt.Fprintf(out, "  - %s\n", k)
				}
				if c.Err != nil {
					failed++
					fmt.Fprintf(out, "  error: %s\n", strings.ReplaceAll(c.Err.Error(), "\n", "\n  "))
				}
			}
			if failed > 0 {
				return &exitError{exitInvalid, fmt.Errorf("%d cluster(s) failed", failed)}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "topology file")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig holding the topology's contexts")
	cmd.Flags().BoolVar(&prune, "prune", true, "delete owned objects that are no longer desired")
	cmd.Flags().IntVar(&concurrency, "concurrency", 8, "clusters worked on at once")
	return cmd
}

func newReconcileCommand() *cobra.Command {
	var file, kubeconfig, healthAddr string
	var prune bool
	var resync time.Duration
	cmd := &cobra.Command{
		Use:   "reconcile --topology FILE",
		Short: "Keep every cluster matching the topology file, continuously",
		Long: `Reconcile watches the topology file (including the atomic symlink swap of a
mounted ConfigMap or a git-sync checkout) and the Node objects of every
cluster, and re-plans and applies on every change and every --resync period,
reverting drift on managed objects. A node that joins, leaves or goes NotReady
moves the NodeConfigs within moments; a failed gateway is replaced. An invalid
topology never reaches the clusters: the last good one stays in force and the
problems are logged with file:line:col. A cluster that stops answering keeps
its last known facts, so its peers keep their routes to it.

Clusters are reached through the contexts the topology names
(kubeconfig.context). /healthz, /readyz and /metrics are served on
--health-addr.`,
		Example: `  kosmos reconcile --topology /etc/kosmos/topology.yaml --kubeconfig ~/.kube/clusters`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return &exitError{exitError2, errors.New("reconcile: --topology FILE is required")}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			var ready atomic.Bool
			if healthAddr != "" {
				reg := prometheus.NewRegistry()
				if err := reconciler.RegisterMetrics(reg); err != nil {
					return &exitError{exitError2, err}
				}
				stopHealth, err := serveHealth(healthAddr, &ready, reg)
				if err != nil {
					return &exitError{exitError2, err}
				}
				defer stopHealth()
			}
			ctl := &reconciler.Controller{
				TopologyPath: file,
				Connect: func(t *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
					return reconciler.ConnectContexts(t, kubeconfig)
				},
				Resync: resync,
				Prune:  prune,
				Log:    log,
				OnPass: func(_ reconciler.Report, err error) { ready.Store(err == nil) },
			}
			log.Info("reconciler running", "topology", file, "resync", resync)
			if err := ctl.Run(ctx); err != nil {
				return &exitError{exitError2, err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "topology", "", "topology file to follow")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig holding the topology's contexts")
	cmd.Flags().BoolVar(&prune, "prune", true, "delete owned objects that are no longer desired")
	cmd.Flags().DurationVar(&resync, "resync", time.Minute, "period of the full pass that reverts drift")
	cmd.Flags().StringVar(&healthAddr, "health-addr", ":9440", "address of /healthz, /readyz and /metrics (empty: off)")
	return cmd
}
