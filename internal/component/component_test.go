package component

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"kosmos.io/kosmos/internal/testinfra/poll"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func status(url string) int {
	r, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer r.Body.Close()
	_, _ = io.Copy(io.Discard, r.Body)
	return r.StatusCode
}

// TestFailingRunIsRetried: a component whose loop fails at start-up is
// retried with backoff instead of ending, /healthz says so while it waits,
// and once the loop runs everything is healthy and ready.
func TestFailingRunIsRetried(t *testing.T) {
	Backoff.First, Backoff.Max = 400*time.Millisecond, time.Second
	addr := freeAddr(t)
	var attempts atomic.Int32
	var ready atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Name: "test", HealthAddr: addr, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, &ready, func(ctx context.Context) error {
			if attempts.Add(1) <= 2 {
				return errors.New("member not answering")
			}
			ready.Store(true)
			<-ctx.Done()
			return nil
		})
	}()
	healthz, readyz := fmt.Sprintf("http://%s/healthz", addr), fmt.Sprintf("http://%s/readyz", addr)
	poll.Until(t, 5*time.Second, "/healthz to fail while the run waits to retry", func() bool { return status(healthz) == http.StatusServiceUnavailable })
	poll.Until(t, 10*time.Second, "the third attempt to run and be ready", func() bool {
		return attempts.Load() == 3 && status(healthz) == http.StatusOK && status(readyz) == http.StatusOK
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v after its context ended", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return when its context ended")
	}
}
