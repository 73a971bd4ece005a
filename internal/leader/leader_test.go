package leader_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kosmos.io/kosmos/internal/leader"
	"kosmos.io/kosmos/internal/testinfra/testenv"
)

// hostWithNamespace starts a real API server holding kosmos-system, where
// the Leases go.
func hostWithNamespace(t *testing.T) (*rest.Config, kubernetes.Interface) {
	t.Helper()
	env := testenv.StartT(t, testenv.Options{Names: []string{"host"}})
	cfg := env.Cluster("host").Config
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kosmos-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return cfg, cs
}

// Two replicas against a real API server: one acts, the other stands by
// and takes over when the first stops.
func TestOneLeaderThenHandover(t *testing.T) {
	cfg, cs := hostWithNamespace(t)
	var leading atomic.Int32
	var led [2]atomic.Bool
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	start := func(i int) (cancel func(), done chan error) {
		ctx, cancel := context.WithCancel(context.Background())
		done = make(chan error, 1)
		go func() {
			done <- leader.Run(ctx, cfg, leader.Options{
				Namespace: "kosmos-system", Name: "kosmos-reconciler", Identity: []string{"a", "b"}[i],
				LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond, Log: log,
			}, func(ctx context.Context) error {
				if leading.Add(1) > 1 {
					t.Error("two replicas lead at once")
				}
				led[i].Store(true)
				<-ctx.Done()
				<-time.After(300 * time.Millisecond) // a run that takes a moment to wind down
				leading.Add(-1)
				return nil
			})
		}()
		return cancel, done
	}
	cancelA, doneA := start(0)
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			<-time.After(50 * time.Millisecond)
		}
	}
	wait("a to lead", led[0].Load)
	cancelB, doneB := start(1)
	defer func() { cancelB(); <-doneB }()
	<-time.After(3 * time.Second) // longer than a lease: b must still stand by
	if led[1].Load() {
		t.Fatal("b leads while a holds the lease")
	}
	cancelA()
	if err := <-doneA; err != nil {
		t.Fatalf("a: %v", err)
	}
	took := time.Now()
	wait("b to take over", led[1].Load)
	t.Logf("handover in %s (a released the lease on exit)", time.Since(took).Round(time.Millisecond))
	lease, err := cs.CoordinationV1().Leases("kosmos-system").Get(context.Background(), "kosmos-reconciler", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "b" {
		t.Errorf("lease holder = %v, want b", lease.Spec.HolderIdentity)
	}
}

// A guarded function that returns by itself while leading ends the election:
// Run reports ErrStopped (the process exits and restarts) and the Lease is
// released, so a standby takes over instead of a leader that does nothing.
func TestStoppedLeaderLetsGo(t *testing.T) {
	cfg, _ := hostWithNamespace(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := leader.Options{Namespace: "kosmos-system", Name: "kosmos-tree", Identity: "a",
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 200 * time.Millisecond, Log: log}
	done := make(chan error, 1)
	go func() {
		done <- leader.Run(context.Background(), cfg, opts, func(context.Context) error { return errors.New("start-up failed") })
	}()
	select {
	case err := <-done:
		if !errors.Is(err, leader.ErrStopped) || !strings.Contains(err.Error(), "start-up failed") {
			t.Errorf("Run = %v, want ErrStopped with the cause", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run kept the lease after the guarded function returned")
	}
	// Released: b leads at once, not after the 15 s lease runs out.
	opts.Identity = "b"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ledB := make(chan struct{})
	go func() {
		_ = leader.Run(ctx, cfg, opts, func(ctx context.Context) error { close(ledB); <-ctx.Done(); return nil })
	}()
	select {
	case <-ledB:
	case <-time.After(5 * time.Second):
		t.Fatal("the lease was not released when the leader stopped")
	}
}
