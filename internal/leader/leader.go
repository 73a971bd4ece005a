// Package leader runs a function only while this process holds a Lease, so
// that of several replicas of a controller exactly one acts.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Options name the Lease and tune the election. Zero durations take the
// usual Kubernetes controller defaults (15s lease, 10s renew, 2s retry).
type Options struct {
	Namespace, Name string
	// Identity of this candidate; hostname plus a random suffix when empty.
	Identity                                  string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Log                                       *slog.Logger
}

// Run campaigns for the Lease and calls run while leading, with a context
// that ends when leadership is lost or ctx ends. It returns when ctx ends,
// or with an error when leadership is lost (the process should exit and
// restart rather than act on stale state).
func Run(ctx context.Context, cfg *rest.Config, o Options, run func(context.Context)) error {
	if o.Namespace == "" || o.Name == "" {
		return errors.New("leader election: namespace and name of the Lease are required")
	}
	if o.Identity == "" {
		host, _ := os.Hostname()
		o.Identity = fmt.Sprintf("%s-%d", host, time.Now().UnixNano()%1e6)
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 15*time.Second, 10*time.Second, 2*time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, o.Namespace, o.Name, cs.CoreV1(), cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: o.Identity})
	if err != nil {
		return err
	}
	lost := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   o.LeaseDuration,
		RenewDeadline:   o.RenewDeadline,
		RetryPeriod:     o.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            o.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				o.Log.Info("leading", "lease", o.Namespace+"/"+o.Name, "identity", o.Identity)
				run(lctx)
			},
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					close(lost)
				}
			},
			OnNewLeader: func(id string) {
				if id != o.Identity {
					o.Log.Info("another replica leads; standing by", "leader", id)
				}
			},
		},
	})
	if err != nil {
		return err
	}
	le.Run(ctx)
	select {
	case <-lost:
		return fmt.Errorf("leader election: lost the lease %s/%s", o.Namespace, o.Name)
	default:
		return nil
	}
}

// RunIf calls run directly when elect is false, and under Run (only while
// leading) when it is true; it returns run's error or the election's.
func RunIf(ctx context.Context, elect bool, cfg *rest.Config, o Options, run func(context.Context) error) error {
	if !elect {
		return run(ctx)
	}
	var runErr error
	if err := Run(ctx, cfg, o, func(ctx context.Context) { runErr = run(ctx) }); err != nil {
		return err
	}
	return runErr
}
