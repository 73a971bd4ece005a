// Package leader runs a function only while this process holds a Lease, so
// that of several replicas of a controller exactly one acts.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
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

// ErrStopped says the guarded function returned while this process led:
// the process must exit (and be restarted) rather than keep the Lease while
// doing nothing.
var ErrStopped = errors.New("leader election: the leading function stopped")

// Run campaigns for the Lease and calls run while leading, with a context
// that ends when leadership is lost or ctx ends. The Lease is released only
// after run has returned. It returns nil when ctx ended; an error when
// leadership was lost, or (wrapping ErrStopped, with run's error) when run
// returned by itself: either way the process should exit and restart rather
// than act on stale state or hold the Lease idle.
func Run(ctx context.Context, cfg *rest.Config, o Options, run func(context.Context) error) error {
	if o.Namespace == "" || o.Name == "" {
		return errors.New("leader election: namespace and name of the Lease are required")
	}
	o.defaults()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, o.Namespace, o.Name, cs.CoreV1(), cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: o.Identity})
	if err != nil {
		return err
	}
	c := &campaign{o: o, parent: ctx, run: run, runDone: make(chan struct{}), lost: make(chan struct{})}
	// The election has its own context: it is cancelled (and the Lease
	// released) only once run has returned, or when ctx ends before this
	// process leads.
	electCtx, cancelElect := context.WithCancel(context.Background())
	defer cancelElect()
	c.cancelElect = cancelElect
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: o.LeaseDuration, RenewDeadline: o.RenewDeadline, RetryPeriod: o.RetryPeriod,
		ReleaseOnCancel: true, Name: o.Name,
		Callbacks: leaderelection.LeaderCallbacks{OnStartedLeading: c.lead, OnStoppedLeading: c.stoppedLeading, OnNewLeader: c.newLeader},
	})
	if err != nil {
		return err
	}
	go c.releaseAfterRun()
	le.Run(electCtx)
	return c.result()
}

// campaign is one Run: what its callbacks share.
type campaign struct {
	o           Options
	parent      context.Context
	run         func(context.Context) error
	cancelElect context.CancelFunc
	runDone     chan struct{} // closed when run has returned
	lost        chan struct{} // closed when leadership was lost while parent lived

	mu      sync.Mutex
	started bool
	runErr  error
	stopped bool // run returned while the parent context and the lease were live
}

// lead runs the guarded function until leadership or the parent context
// ends, then ends the election.
func (c *campaign) lead(lctx context.Context) {
	c.mu.Lock()
	c.started = true
	c.mu.Unlock()
	c.o.Log.Info("leading", "lease", c.o.Namespace+"/"+c.o.Name, "identity", c.o.Identity)
	rctx, cancel := context.WithCancel(lctx)
	stopWithParent := context.AfterFunc(c.parent, cancel)
	err := c.run(rctx)
	stopWithParent()
	cancel()
	c.mu.Lock()
	c.runErr, c.stopped = err, c.parent.Err() == nil && lctx.Err() == nil
	c.mu.Unlock()
	close(c.runDone)
	c.cancelElect()
}

func (c *campaign) stoppedLeading() {
	if c.parent.Err() == nil {
		close(c.lost)
	}
}

func (c *campaign) newLeader(id string) {
	if id != c.o.Identity {
		c.o.Log.Info("another replica leads; standing by", "leader", id)
	}
}

// releaseAfterRun ends the election when the parent context ends, once run
// (if it started) has returned.
func (c *campaign) releaseAfterRun() {
	select {
	case <-c.parent.Done():
	case <-c.runDone:
		return
	}
	c.mu.Lock()
	leading := c.started
	c.mu.Unlock()
	if leading {
		<-c.runDone
	}
	c.cancelElect()
}

func (c *campaign) result() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.stopped && c.runErr != nil:
		return fmt.Errorf("%w: %w", ErrStopped, c.runErr)
	case c.stopped:
		return ErrStopped
	case c.parent.Err() == nil && isClosed(c.lost):
		return fmt.Errorf("leader election: lost the lease %s/%s", c.o.Namespace, c.o.Name)
	case c.started:
		return c.runErr
	}
	return nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (o *Options) defaults() {
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
}

// RunIf calls run directly when elect is false, and under Run (only while
// leading) when it is true.
func RunIf(ctx context.Context, elect bool, cfg *rest.Config, o Options, run func(context.Context) error) error {
	if !elect {
		return run(ctx)
	}
	return Run(ctx, cfg, o, run)
}
