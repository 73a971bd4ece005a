// Package component runs a long-running Kosmos component (the reconciler,
// the tree, the node agent) the same way in every command: until SIGINT or
// SIGTERM, with /healthz, /readyz and /metrics served, and under leader
// election when asked.
//
// Usage:
//
//	var ready atomic.Bool
//	ctl.OnPass = func(err error) { ready.Store(err == nil) }
//	err := component.Run(ctx, component.Options{
//		Name: "kosmos-tree", HealthAddr: ":9442", Metrics: ctl.Register,
//		LeaderElect: true, Config: hostConfig, Namespace: "kosmos-system", Log: log,
//	}, &ready, ctl.Run)
//
// A component whose loop returns by itself while leading ends the process
// with an error (see internal/leader), so its pod restarts instead of holding
// the Lease idle.
package component

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"

	"kosmos.io/kosmos/internal/leader"
)

// Options say how a component runs.
type Options struct {
	// Name of the component; with LeaderElect, the name of its Lease.
	Name string
	// HealthAddr serves /healthz, /readyz and /metrics; empty: off.
	HealthAddr string
	// Metrics registers the component's metrics (nil: none of its own).
	Metrics func(prometheus.Registerer) error
	// LeaderElect runs the component only while it holds the Lease Name in
	// Namespace of the cluster behind Config.
	LeaderElect bool
	Config      *rest.Config
	Namespace   string
	Log         *slog.Logger
}

// Run serves health and metrics, then calls run (under leader election when
// asked) until ctx ends or SIGINT/SIGTERM arrives. ready is what /readyz
// answers; the component sets it. A run that fails (a member not answering
// at start-up, say) is retried with backoff (1s, doubling, 30s at most);
// /healthz fails while it waits to retry.
func Run(ctx context.Context, o Options, ready *atomic.Bool, run func(context.Context) error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.Log == nil {
		o.Log = slog.Default()
	}
	var failing atomic.Pointer[error]
	if o.HealthAddr != "" {
		reg := prometheus.NewRegistry()
		if o.Metrics != nil {
			if err := o.Metrics(reg); err != nil {
				return fmt.Errorf("%s metrics: %w", o.Name, err)
			}
		}
		stopHealth, err := serveHealth(o.HealthAddr, ready, &failing, reg)
		if err != nil {
			return err
		}
		defer stopHealth()
	}
	retried := func(ctx context.Context) error { return retry(ctx, o, &failing, run) }
	return leader.RunIf(ctx, o.LeaderElect, o.Config, leader.Options{Namespace: o.Namespace, Name: o.Name, Log: o.Log}, retried)
}

// Backoff bounds the waits between retries of a failing run.
var Backoff = struct{ First, Max time.Duration }{time.Second, 30 * time.Second}

// retry calls run until it returns nil or ctx ends, waiting with backoff
// after each failure; failing holds the last error while it waits.
func retry(ctx context.Context, o Options, failing *atomic.Pointer[error], run func(context.Context) error) error {
	wait := Backoff.First
	for {
		err := run(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		failing.Store(&err)
		o.Log.Error("component failed; retrying", "component", o.Name, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		failing.Store(nil)
		wait = min(2*wait, Backoff.Max)
	}
}

// serveHealth serves /healthz (ok while the process runs, failing while
// failing holds an error), /readyz (ok once ready is set) and /metrics
// (Prometheus, from reg) on addr; the returned function stops it.
func serveHealth(addr string, ready *atomic.Bool, failing *atomic.Pointer[error], reg *prometheus.Registry) (func(), error) {
	// Listen from a fresh goroutine: the caller's thread may be locked into
	// a node's network namespace (the agent's --netns); the endpoint belongs
	// to the process's own.
	type result struct {
		ln  net.Listener
		err error
	}
	got := make(chan result)
	go func() { ln, err := net.Listen("tcp", addr); got <- result{ln, err} }()
	r := <-got
	if r.err != nil {
		return nil, fmt.Errorf("health endpoint %s: %w", addr, r.err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if failing != nil {
			if err := failing.Load(); err != nil {
				http.Error(w, "failing, retrying: "+(*err).Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready == nil || !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(r.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "health endpoint:", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
