package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/internal/leader"
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
	facts, err := reconciler.ObserveAll(ctx, clusters)
	if err != nil {
		return nil, &exitError{exitError2, err}
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
			failed := printPass(cmd.OutOrStdout(), rep, true)
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

type reconcileFlags struct {
	file, object, kubeconfig, context, connect, namespace, healthAddr string
	prune, leaderElect                                                bool
	resync, clusterTimeout, endpointExpiry                            time.Duration
}

func newReconcileCommand() *cobra.Command {
	var f reconcileFlags
	cmd := &cobra.Command{
		Use:   "reconcile (--topology FILE | --topology-object NAMESPACE/NAME)",
		Short: "Keep every cluster matching the topology, continuously",
		Long: `Reconcile follows the topology and the Node objects of every cluster, and
re-plans and applies on every change and every --resync period, reverting
drift on managed objects. A node that joins, leaves or goes NotReady moves the
NodeConfigs within moments; a failed gateway is replaced.

The topology comes from a file (--topology; the atomic symlink swap of a
mounted ConfigMap and a git-sync checkout are followed) or from a
KosmosTopology object in the host cluster (--topology-object, as Argo CD or
Flux deliver it). An invalid topology never reaches the clusters: the last
good one stays in force and the problems are logged with their field paths
(and file:line:col), and for an object written to its status and events.
The object's status is kstatus-compatible: observedGeneration and the
conditions Ready, Reconciling and Stalled, so 'kubectl wait
--for=condition=Ready' and Flux health checks work.

Clusters are reached (--connect) through the kubeconfig Secrets the topology
names (kubeconfig.secretRef, read from the host; the host itself may use the
controller's own credentials) or through contexts of the local kubeconfig
(kubeconfig.context). The default, auto, uses Secrets in a cluster and
contexts elsewhere. A cluster that stops answering delays no one for longer
than --cluster-timeout and keeps its last known facts, so its peers keep their
routes to it; clusters that failed are reconnected on every resync.

With --leader-elect, replicas share a Lease in --namespace and only the
holder acts. /healthz, /readyz and /metrics are served on --health-addr.`,
		Example: `  # beside a git checkout, reaching clusters through local contexts
  kosmos reconcile --topology ./topology.yaml --kubeconfig ~/.kube/clusters

  # in the host cluster (what kustomize/base deploys)
  kosmos reconcile --topology-object kosmos-system/example --leader-elect`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runReconcile(cmd.Context(), cmd.ErrOrStderr(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.file, "topology", "", "topology file to follow")
	fl.StringVar(&f.object, "topology-object", "", "KosmosTopology object in the host to follow, as NAMESPACE/NAME")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig: the clusters' contexts (--connect contexts) or the host's credentials (default: in-cluster)")
	fl.StringVar(&f.context, "context", "", "context of --kubeconfig that reaches the host (default: its current context)")
	fl.StringVar(&f.connect, "connect", "auto", "how clusters are reached: secrets, contexts or auto")
	fl.StringVar(&f.namespace, "namespace", cmpOr(os.Getenv("POD_NAMESPACE"), "kosmos-system"), "namespace of kubeconfig Secrets without one, and of the leader Lease")
	fl.BoolVar(&f.prune, "prune", true, "delete owned objects that are no longer desired")
	fl.DurationVar(&f.resync, "resync", time.Minute, "period of the full pass that reverts drift and retries failed clusters")
	fl.DurationVar(&f.endpointExpiry, "endpoint-expiry", 2*time.Minute, "how long the imported endpoints of a cluster that stopped answering are kept in the other clusters")
	fl.DurationVar(&f.clusterTimeout, "cluster-timeout", 5*time.Minute, "longest a phase of a pass (observe, apply) may take in one cluster; each request is bounded to 30s")
	fl.BoolVar(&f.leaderElect, "leader-elect", false, "act only while holding the Lease kosmos-reconciler (run several replicas)")
	fl.StringVar(&f.healthAddr, "health-addr", ":9440", "address of /healthz, /readyz and /metrics (empty: off)")
	return cmd
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func runReconcile(ctx context.Context, stderr io.Writer, f reconcileFlags) error {
	if (f.file == "") == (f.object == "") {
		return &exitError{exitError2, errors.New("reconcile: give exactly one of --topology FILE and --topology-object NAMESPACE/NAME")}
	}
	objNS, objName, ok := strings.Cut(f.object, "/")
	if f.object != "" && (!ok || objNS == "" || objName == "") {
		return &exitError{exitError2, fmt.Errorf("reconcile: --topology-object %q: want NAMESPACE/NAME", f.object)}
	}
	if f.connect == "auto" {
		f.connect = "contexts"
		if f.kubeconfig == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
			f.connect = "secrets"
		}
	}
	if f.connect != "secrets" && f.connect != "contexts" {
		return &exitError{exitError2, fmt.Errorf("reconcile: --connect %q: want secrets, contexts or auto", f.connect)}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, nil))

	// The host: where Secrets, the topology object, events and the Lease
	// live. Only needed when one of those is used.
	var host *rest.Config
	if f.object != "" || f.connect == "secrets" || f.leaderElect {
		var err error
		if host, err = hostConfig(f.kubeconfig, f.context); err != nil {
			return &exitError{exitError2, err}
		}
	}
	ctl := &reconciler.Controller{
		Resync: f.resync, ClusterTimeout: f.clusterTimeout, EndpointExpiry: f.endpointExpiry, Prune: f.prune, Log: log,
		Source: reconciler.FileSource{Path: f.file},
		Connect: func(t *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
			return reconciler.ConnectContexts(t, f.kubeconfig)
		},
	}
	if f.connect == "secrets" {
		ctl.Connect = func(t *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
			return reconciler.ConnectSecrets(ctx, host, t, f.namespace)
		}
	}
	if f.object != "" {
		scheme, err := reconciler.Scheme()
		if err != nil {
			return &exitError{exitError2, err}
		}
		wc, err := client.NewWithWatch(host, client.Options{Scheme: scheme})
		if err != nil {
			return &exitError{exitError2, err}
		}
		rec, stopRec, err := reconciler.NewEventRecorder(host, "kosmos-reconciler")
		if err != nil {
			return &exitError{exitError2, err}
		}
		defer stopRec()
		ctl.Source = &reconciler.ObjectSource{Client: wc, Namespace: objNS, Name: objName, Events: rec}
	}

	var ready atomic.Bool
	ctl.OnPass = func(_ reconciler.Report, err error) { ready.Store(err == nil) }
	if f.healthAddr != "" {
		reg := prometheus.NewRegistry()
		if err := reconciler.RegisterMetrics(reg); err != nil {
			return &exitError{exitError2, err}
		}
		stopHealth, err := serveHealth(f.healthAddr, &ready, reg)
		if err != nil {
			return &exitError{exitError2, err}
		}
		defer stopHealth()
	}
	log.Info("reconciler running", "topology", ctl.Source.String(), "connect", f.connect, "resync", f.resync, "leaderElect", f.leaderElect)
	if err := leader.RunIf(ctx, f.leaderElect, host, leader.Options{Namespace: f.namespace, Name: "kosmos-reconciler", Log: log}, ctl.Run); err != nil {
		return &exitError{exitError2, err}
	}
	return nil
}

// printPass prints what a pass did per cluster (with every object when
// verbose) and returns how many clusters failed.
func printPass(out io.Writer, rep reconciler.Report, verbose bool) (failed int) {
	for _, p := range rep.Problems {
		fmt.Fprintln(out, "problem:", p)
	}
	for _, c := range rep.Clusters {
		r := c.Result
		fmt.Fprintf(out, "cluster %s: %d created, %d updated, %d pruned, %d unchanged\n", c.Name, len(r.Created), len(r.Updated), len(r.Pruned), len(r.Unchanged))
		if verbose {
			for _, set := range []struct {
				mark string
				keys []string
			}{{"+", r.Created}, {"~", r.Updated}, {"-", r.Pruned}} {
				for _, k := range set.keys {
					fmt.Fprintf(out, "  %s %s\n", set.mark, k)
				}
			}
		}
		if c.Err != nil {
			failed++
			fmt.Fprintf(out, "  error: %s\n", strings.ReplaceAll(c.Err.Error(), "\n", "\n  "))
		}
	}
	return failed
}
