package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/internal/component"
	"kosmos.io/kosmos/internal/kubeconfig"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/reconciler/inventory"
	"kosmos.io/kosmos/reconciler/plan"
	"kosmos.io/kosmos/schema"
	kscheme "kosmos.io/kosmos/schema/scheme"
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
// it fails, naming each, when any cluster cannot be observed.
func observeAll(ctx context.Context, t *v1alpha1.KosmosTopology, kubeconfig string) (plan.Facts, error) {
	facts, errs, err := observeSome(ctx, t, kubeconfig)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, &exitError{exitError2, joinByCluster(errs)}
	}
	return facts, nil
}

// observeSome reads the facts of every cluster it can reach; errs say why
// the others could not be read.
func observeSome(ctx context.Context, t *v1alpha1.KosmosTopology, kubeconfig string) (plan.Facts, map[string]error, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	clusters, err := reconciler.ConnectContexts(t, kubeconfig)
	if err != nil {
		return nil, nil, &exitError{exitError2, err}
	}
	facts, errs := reconciler.ObserveFacts(ctx, t, clusters)
	return facts, errs, nil
}

// joinByCluster joins errors by cluster, each naming its cluster once, in
// name order.
func joinByCluster(errs map[string]error) error {
	var out []error
	for _, name := range slices.Sorted(maps.Keys(errs)) {
		out = append(out, fmt.Errorf("cluster %s: %w", name, errs[name]))
	}
	return errors.Join(out...)
}

func newRenderCommand() *cobra.Command {
	var file, factsFile, kubeconfig, output string
	cmd := &cobra.Command{
		Use:   "render -f FILE [--facts FACTS]",
		Short: "Print the objects the topology wants in every cluster",
		Long: `Render prints every object Kosmos would write in every cluster, from the
same plan apply and diff use: the kosmos-system namespace, NodeConfigs, the
kosmos-dns ConfigMap, the ServiceExports written for spec.services,
ServiceImports and their EndpointSlices, and in the host the Cluster and
DistributionPolicy objects, with defaults applied.

The facts (nodes, addresses, pod CIDRs, gateways, services) come from
--facts, a file captured by 'kosmos facts', or else from the clusters
themselves, reached through the contexts the topology names. A cluster that
cannot be reached is no error: what needs its facts is left out, and a
comment (and a line on stderr) says what and how to get it.`,
		Example: `  kosmos render -f topology.yaml                  # no cluster needed for what needs no facts
  kosmos render -f topology.yaml --facts facts.yaml
  kosmos render -f topology.yaml -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := loadTopology(file)
			if err != nil {
				return err
			}
			var facts plan.Facts
			if factsFile != "" {
				if facts, err = readFacts(factsFile); err != nil {
					return err
				}
			} else {
				var errs map[string]error
				if facts, errs, err = observeSome(cmd.Context(), t, kubeconfig); err != nil {
					return err
				}
				for _, name := range slices.Sorted(maps.Keys(errs)) {
					fmt.Fprintf(cmd.ErrOrStderr(), "render: cluster %s not observed (%v)\n", name, errs[name])
				}
				if len(errs) > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "render: what needs those clusters' facts is left out (NodeConfigs, ServiceExports, imports);\n"+
						"  capture them where the clusters are reachable with 'kosmos facts -f %s > facts.yaml' and pass --facts facts.yaml\n", file)
				}
			}
			p := plan.Compute(plan.Input{Topology: t, Facts: facts, Now: time.Now()})
			out, err := reconciler.Render(p, output == "json")
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

// readFacts loads a facts file; any problem is exit 2.
func readFacts(path string) (plan.Facts, error) {
	data, err := schema.ReadFileLimit(path, plan.MaxFactsSize)
	if err != nil {
		return nil, &exitError{exitError2, err}
	}
	facts, err := plan.LoadFacts(data)
	if err != nil {
		return nil, &exitError{exitError2, fmt.Errorf("%s: %w", path, err)}
	}
	return facts, nil
}

func newFactsCommand() *cobra.Command {
	var file, kubeconfig string
	cmd := &cobra.Command{
		Use:   "facts -f FILE",
		Short: "Capture the observed facts of every cluster (for offline render and diff)",
		Long: `Facts reads, from every cluster of the topology, everything the plan reads:
nodes with their InternalIPs, pod CIDRs, readiness and labels, the gateway
in force, and the multi-cluster service facts (namespaces, ServiceExports,
exported Services with their endpoints, the imports Kosmos keeps). The
output holds no credential; keep it beside the topology to render and diff
exactly, without cluster access.`,
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

type applyFlags struct {
	file, kubeconfig, confirm string
	prune, pruneAll, partial  bool
	concurrency, guardPercent int
	forget                    []string
}

func newApplyCommand() *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Make every cluster hold the topology's desired state, once",
		Long: `Apply does one reconcile pass from the CLI: it installs the Kosmos CRDs,
observes every cluster, plans (the plan render and diff show), and
server-side applies (field manager "kosmos") only what differs, clusters in
parallel. An unchanged topology makes no write request.

Prune (--prune, the default) deletes what Kosmos applied before and the
plan no longer holds. What Kosmos applied is recorded per cluster in an
inventory (the ConfigMap kosmos-system/kosmos-inventory-<topology> in the
host); each delete carries the UID it recorded, so nothing Kosmos did not
create is ever deleted, and namespaces never are. A cluster removed from the
topology is reached once more (through what its record names) and cleaned:
its NodeConfigs go, so its agents tear down, then it is forgotten. One that
cannot be reached stays pending (exit 1) until it can, or until you forget it
(--forget-cluster NAME, or the topology annotation kosmos.io/forget-clusters).

The deletion guard: a pass that would delete more than --guard-percent of
what Kosmos owns (a truncated topology file, say) writes nothing and prints a
token; run again with --confirm-deletions TOKEN (or annotate the topology
kosmos.io/confirm-deletions: TOKEN) to proceed. The token confirms exactly
those deletions.

--prune-all takes Kosmos out: everything the inventory records, in every
cluster, is deleted (guarded as above), then the inventory.

It writes nothing when a cluster of the topology cannot be reached or
observed; --partial applies the others, planning the silent ones from their
last good facts (kept in the host, kosmos-system/kosmos-facts-<topology>), so
their peers keep their routes to them. Exit status: 0 done,
1 invalid topology, a cluster failed, a cleanup pending or the guard held,
2 usage error or a cluster unreachable.`,
		Example: `  kosmos apply -f topology.yaml
  kosmos apply -f topology.yaml --kubeconfig ~/.kube/clusters --prune=false
  kosmos apply -f topology.yaml --confirm-deletions 3f9a0c12d4
  kosmos apply -f topology.yaml --prune-all --confirm-deletions 8be0f1a2c3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runApply(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "topology file")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig holding the topology's contexts")
	fl.BoolVar(&f.prune, "prune", true, "delete what Kosmos applied before and no longer wants (by inventory)")
	fl.BoolVar(&f.pruneAll, "prune-all", false, "take Kosmos out: delete everything the inventory records, in every cluster")
	fl.StringVar(&f.confirm, "confirm-deletions", "", "token the deletion guard printed: confirms exactly those deletions")
	fl.IntVar(&f.guardPercent, "guard-percent", inventory.DefaultGuardPercent, "share (%) of owned objects one pass may delete without confirmation; 100 turns the guard off")
	fl.StringSliceVar(&f.forget, "forget-cluster", nil, "cluster that left the topology to forget without cleaning it (repeatable)")
	fl.IntVar(&f.concurrency, "concurrency", 8, "clusters worked on at once")
	fl.BoolVar(&f.partial, "partial", false, "apply the clusters that answer; plan the others from their last good facts (kept in the host) and leave them as they are")
	return cmd
}

func runApply(cmd *cobra.Command, f applyFlags) error {
	t, err := loadTopology(f.file)
	if err != nil {
		return err
	}
	if f.guardPercent < 1 || f.guardPercent > 100 {
		return &exitError{exitError2, fmt.Errorf("--guard-percent %d: want 1 to 100", f.guardPercent)}
	}
	clusters, err := reconciler.ConnectContexts(t, f.kubeconfig)
	if err != nil {
		return &exitError{exitError2, err}
	}
	unreachable := map[string]error{}
	for _, c := range clusters {
		if c.Err != nil {
			unreachable[c.Name] = c.Err
		}
	}
	if len(unreachable) > 0 && !f.partial {
		return &exitError{exitError2, fmt.Errorf("nothing applied (--partial applies the others and plans these from their last good facts):\n%w", joinByCluster(unreachable))}
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	rep := reconciler.Pass(ctx, t, clusters, reconciler.PassOptions{
		Prune: f.prune || f.pruneAll, PruneAll: f.pruneAll, Concurrency: f.concurrency, RequireAll: !f.partial,
		GuardPercent: f.guardPercent, ConfirmDeletions: f.confirm, Forget: f.forget,
		Connect: func(t *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
			return reconciler.ConnectContexts(t, f.kubeconfig)
		},
	})
	rep.Write(cmd.OutOrStdout(), true)
	if err := rep.Err(); err != nil {
		return &exitError{exitInvalid, err}
	}
	return nil
}

type reconcileFlags struct {
	file, object, kubeconfig, context, connect, namespace, healthAddr string
	prune, leaderElect, allowInsecureKubeconfig                       bool
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
routes to it; clusters that failed, and clusters whose kubeconfig Secret was
rewritten (a rotated token), are reconnected on the next resync. The tree
reaches members through kubeconfig.treeSecretRef, not these Secrets.

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
	fl.StringVar(&f.namespace, "namespace", cmpOr(os.Getenv("POD_NAMESPACE"), v1alpha1.SystemNamespace), "namespace of kubeconfig Secrets without one, and of the leader Lease")
	fl.BoolVar(&f.prune, "prune", true, "delete owned objects that are no longer desired")
	fl.BoolVar(&f.allowInsecureKubeconfig, "allow-insecure-kubeconfig", false, "accept kubeconfig Secrets marked insecure-skip-tls-verify (test setups only; file paths, proxies and exec plugins stay refused)")
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
	if err := f.check(); err != nil {
		return &exitError{exitError2, err}
	}
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
			return reconciler.ConnectSecrets(ctx, host, t, f.namespace, kubeconfig.Options{AllowInsecureSkipTLSVerify: f.allowInsecureKubeconfig})
		}
	}
	if f.object != "" {
		src, stopRec, err := objectSource(host, f.object)
		if err != nil {
			return &exitError{exitError2, err}
		}
		defer stopRec()
		ctl.Source = src
	}
	var ready atomic.Bool
	ctl.OnPass = func(_ reconciler.Report, err error) { ready.Store(err == nil) }
	log.Info("reconciler running", "topology", ctl.Source.String(), "connect", f.connect, "resync", f.resync, "leaderElect", f.leaderElect)
	opts := component.Options{Name: "kosmos-reconciler", HealthAddr: f.healthAddr, Metrics: reconciler.RegisterMetrics,
		LeaderElect: f.leaderElect, Config: host, Namespace: f.namespace, Log: log}
	if err := component.Run(ctx, opts, &ready, ctl.Run); err != nil {
		return &exitError{exitError2, err}
	}
	return nil
}

// check refuses contradictory flags and resolves --connect auto: Secrets in
// a cluster, contexts elsewhere.
func (f *reconcileFlags) check() error {
	if (f.file == "") == (f.object == "") {
		return errors.New("reconcile: give exactly one of --topology FILE and --topology-object NAMESPACE/NAME")
	}
	if ns, name, ok := strings.Cut(f.object, "/"); f.object != "" && (!ok || ns == "" || name == "") {
		return fmt.Errorf("reconcile: --topology-object %q: want NAMESPACE/NAME", f.object)
	}
	if f.connect == "auto" {
		f.connect = "contexts"
		if f.kubeconfig == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
			f.connect = "secrets"
		}
	}
	if f.connect != "secrets" && f.connect != "contexts" {
		return fmt.Errorf("reconcile: --connect %q: want secrets, contexts or auto", f.connect)
	}
	return nil
}

// objectSource follows the KosmosTopology object NAMESPACE/NAME in the
// host, recording events on it; stop flushes the events.
func objectSource(host *rest.Config, object string) (src *reconciler.ObjectSource, stop func(), err error) {
	ns, name, _ := strings.Cut(object, "/")
	scheme, err := kscheme.New()
	if err != nil {
		return nil, nil, err
	}
	wc, err := client.NewWithWatch(host, client.Options{Scheme: scheme})
	if err != nil {
		return nil, nil, err
	}
	rec, stop, err := reconciler.NewEventRecorder(host, "kosmos-reconciler")
	if err != nil {
		return nil, nil, err
	}
	return &reconciler.ObjectSource{Client: wc, Namespace: ns, Name: name, Events: rec}, stop, nil
}
