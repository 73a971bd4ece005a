package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// restConfig returns the credentials of a kubeconfig file, or the in-cluster
// ones when path is empty. Errors never carry the credentials themselves.
func restConfig(path string) (*rest.Config, error) {
	if path == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --kubeconfig and not running in a cluster: %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}

// hostConfig returns the host cluster's credentials: context (or the
// current one) of the kubeconfig file, or the in-cluster ones when path is
// empty.
func hostConfig(path, context string) (*rest.Config, error) {
	if path == "" {
		return restConfig("")
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: path},
		&clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}

// serveHealth serves /healthz (always ok while the process runs), /readyz
// (ok once ready is set) and /metrics (Prometheus, from reg) on addr; the
// returned function stops it.
func serveHealth(addr string, ready *atomic.Bool, reg *prometheus.Registry) (func(), error) {
	// Listen from a fresh goroutine: the caller's thread may be locked into
	// a node's network namespace (--netns); the endpoint belongs to the
	// process's own.
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
	ln := r.ln
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Println("health endpoint:", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
