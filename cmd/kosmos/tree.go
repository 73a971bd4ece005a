package main

import (
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/leader"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/tree"
)

func newTreeCommand() *cobra.Command {
	var kubeconfig, kctx, namespace, healthAddr string
	var interval time.Duration
	var leaderElect bool
	cmd := &cobra.Command{
		Use:   "tree",
		Short: "Keep member clusters as virtual nodes of the host (ClusterTree)",
		Long: `Tree runs in the host cluster. For every Cluster object the reconciler
writes (tree enabled), it reads the member through its kubeconfig Secret and
keeps its virtual nodes in the host: one per member (Aggregate) or one per
member node (OneToOne), with allocatable net of the member's own workloads,
the kosmos.io/cluster, region and zone labels, the kosmos.io/leaf taint and
the free-resource summary the scheduler checks. Virtual nodes of clusters that
left the topology are removed; no other node is ever touched.

Not yet: pods bound to virtual nodes are not synced to members (see the
ClusterTree issue).`,
		Example: `  kosmos tree --leader-elect
  kosmos tree --kubeconfig ~/.kube/host --interval 5s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			cfg, err := hostConfig(kubeconfig, kctx)
			if err != nil {
				return &exitError{exitError2, err}
			}
			scheme, err := reconciler.Scheme()
			if err != nil {
				return &exitError{exitError2, err}
			}
			host, err := client.New(cfg, client.Options{Scheme: scheme})
			if err != nil {
				return &exitError{exitError2, err}
			}
			var ready atomic.Bool
			if healthAddr != "" {
				stopHealth, err := serveHealth(healthAddr, &ready, prometheus.NewRegistry())
				if err != nil {
					return &exitError{exitError2, err}
				}
				defer stopHealth()
			}
			ctl := &tree.Controller{Host: host, Namespace: namespace, Interval: interval, Log: log,
				OnPass: func(err error) { ready.Store(err == nil) }}
			if err := leader.RunIf(ctx, leaderElect, cfg, leader.Options{Namespace: namespace, Name: "kosmos-tree", Log: log}, ctl.Run); err != nil {
				return &exitError{exitError2, err}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&kubeconfig, "kubeconfig", "", "the host's kubeconfig (default: in-cluster)")
	fl.StringVar(&kctx, "context", "", "context of --kubeconfig (default: its current context)")
	fl.StringVar(&namespace, "namespace", cmpOr(os.Getenv("POD_NAMESPACE"), "kosmos-system"), "namespace of kubeconfig Secrets without one, and of the leader Lease")
	fl.DurationVar(&interval, "interval", 10*time.Second, "period between passes over the members")
	fl.BoolVar(&leaderElect, "leader-elect", false, "act only while holding the Lease kosmos-tree")
	fl.StringVar(&healthAddr, "health-addr", ":9442", "address of /healthz, /readyz and /metrics (empty: off)")
	return cmd
}
