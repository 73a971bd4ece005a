package nodeagent

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Source yields the NodeConfig to hold; it is called on every pass. An
// error keeps the last good config in force, except ErrNoConfig: the config
// was deleted, and everything the agent owns is torn down.
type Source func() (*v1alpha1.NodeConfigSpec, error)

// ErrNoConfig says the node has no NodeConfig (any more).
var ErrNoConfig = errors.New("no NodeConfig for this node")

// Options tune Run.
type Options struct {
	// Resync is the period of the full read-compare-repair pass.
	Resync time.Duration
	// Changes signals that the kernel changed (netlink subscriptions);
	// nil means rely on the periodic resync only.
	Changes <-chan struct{}
	// Report receives the outcome of every pass that had a config (the spec
	// it held, what it did, the error); it should write only what changed.
	Report func(*v1alpha1.NodeConfigSpec, Result, error)
	Log    *slog.Logger
	// Before, when set, runs before each pass's Set with the config to
	// hold: the WireGuard part that only adds (rule, blackholes, device,
	// peers) goes first, so that no tunnel entry to an encrypted peer
	// exists without them. An error skips the pass (the kernel keeps its
	// last state) and is reported.
	Before func(*v1alpha1.NodeConfigSpec) error
	// After, when set, runs after each pass's Set with the config and
	// Set's error (and after a teardown with nil and its error): the
	// WireGuard part that removes, only once Set succeeded. Its error is
	// reported with the pass's (it degrades the pass, never undoes it).
	After func(*v1alpha1.NodeConfigSpec, error) error
	// Moves, when set, returns the version of the gateway choice and when
	// the latest move was decided (HA.Moves). When the version changed
	// since the last pass, the pass first writes the routes of the new
	// config alone (the fast path, fastmove.go), then runs in full; and a
	// wake-up for a move skips the coalescing wait.
	Moves func() (version uint64, decided time.Time)
}

// Run keeps the kernel matching the source until ctx ends: it applies the
// config at once, then again on every kernel change and every resync period,
// repairing drift (a route deleted by hand is back within one pass). A
// refused config leaves the last good state in the kernel.
func Run(ctx context.Context, k Kernel, src Source, opts Options) {
	if opts.Resync <= 0 {
		opts.Resync = 10 * time.Second
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	var last *v1alpha1.NodeConfigSpec
	var moveSeen uint64 // the choice version the last pass held
	tick := time.NewTicker(opts.Resync)
	defer tick.Stop()
	for {
		var moved bool
		var decided time.Time
		var version uint64
		if opts.Moves != nil {
			version, decided = opts.Moves()
			moved = version != moveSeen && last != nil
		}
		spec, err := src()
		moved = moved && err == nil
		var refused *RefusedError
		switch {
		case errors.Is(err, ErrNoConfig):
			res, err := Teardown(k)
			if len(res.Applied) > 0 || err != nil {
				log.Info("NodeConfig gone; torn down", "changes", len(res.Applied), "err", err)
			}
			last, spec = nil, nil
			if opts.After != nil {
				if err := opts.After(nil, err); err != nil {
					log.Error("tear down WireGuard", "err", err)
				}
			}
		case errors.As(err, &refused):
			refuse(k, last, refused, opts, log)
			spec = nil
		case err != nil && last == nil:
			log.Error("no NodeConfig yet", "err", err)
		case err != nil:
			log.Error("NodeConfig unreadable; keeping the last good one", "err", err)
			spec = last
		}
		if spec != nil && opts.Before != nil {
			if err := opts.Before(spec); err != nil {
				log.Error("pass skipped: the WireGuard part failed; the kernel keeps its last state", "err", err)
				observePass(Result{}, err, 0)
				if opts.Report != nil {
					opts.Report(spec, Result{}, err)
				}
				spec = nil
			}
		}
		if spec != nil {
			if moved {
				fastMove(k, spec, last, decided, log)
			}
			if err == nil { // a pass on a fresh config holds the choice it was derived with
				moveSeen = version
			}
			start := time.Now()
			res, err := Set(k, spec)
			observePass(res, err, time.Since(start).Seconds())
			// Refused whole means no write was even tried; a pass whose
			// writes (some) failed still holds this config.
			if err == nil || len(res.Applied) > 0 || len(res.Failed) > 0 {
				last = spec
			} else if last != spec {
				// Refused whole: hold the last good config (repairing drift
				// in it) and report the refusal, not the repair. A move the
				// fast path made holds too (withMove).
				if moved {
					last = withMove(last, spec)
				}
				holdLast(k, last, log, err)
			}
			if opts.After != nil {
				if aerr := opts.After(spec, err); aerr != nil {
					log.Error("WireGuard part of the pass", "err", aerr)
					err = errors.Join(err, aerr)
				}
			}
			logPass(log, res, err)
			if opts.Report != nil {
				opts.Report(spec, res, err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-opts.Changes:
			// Coalesce a burst of kernel events into one pass (but not
			// the wake-up of a gateway move: its routes go first).
			if v, _ := moves(opts); v == moveSeen {
				time.Sleep(50 * time.Millisecond)
			}
			drain(opts.Changes)
		}
	}
}

// refuse handles a config refused before it could be made complete: the
// last good one stays, and the refusal is reported.
func refuse(k Kernel, last *v1alpha1.NodeConfigSpec, refused *RefusedError, opts Options, log *slog.Logger) {
	holdLast(k, last, log, refused)
	observePass(Result{}, refused, 0)
	if opts.Report != nil {
		opts.Report(refused.Spec, Result{}, refused)
	}
}

// holdLast keeps the last good config in the kernel (repairing drift in
// it) after a new one was refused whole.
func holdLast(k Kernel, last *v1alpha1.NodeConfigSpec, log *slog.Logger, refusal error) {
	if last == nil {
		return
	}
	log.Error("NodeConfig refused; keeping the last good one", "err", refusal)
	if _, err := Set(k, last); err != nil {
		log.Error("restore the last good NodeConfig", "err", err)
	}
}

// logPass logs a pass that changed something or failed, and every link it
// changed in place or recreated, with the reason.
func logPass(log *slog.Logger, res Result, err error) {
	for _, op := range res.Applied {
		switch {
		case op.Offload != nil:
			log.Info("offload set again", "device", op.Offload.Dev, "feature", op.Offload.Feature, "change", op.Reason)
		case op.Link == nil || op.Reason == "":
		case op.Kind == OpSet:
			log.Info("link changed in place", "link", op.Link.Name, "change", op.Reason)
		case op.Kind == OpDel:
			log.Info("recreating link", "link", op.Link.Name, "reason", op.Reason)
		}
	}
	for _, w := range res.Warnings {
		log.Warn("kernel refused a write; the pass goes on without it", "err", w)
	}
	if len(res.Applied) > 0 || err != nil {
		log.Info("kernel synced", "changes", len(res.Applied), "err", err)
	}
}

// moves is opts.Moves's version, 0 without it.
func moves(opts Options) (uint64, time.Time) {
	if opts.Moves == nil {
		return 0, time.Time{}
	}
	return opts.Moves()
}

func drain(c <-chan struct{}) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// Merge forwards a signal from any of the channels to the returned one,
// coalesced, until ctx ends.
func Merge(ctx context.Context, chans ...<-chan struct{}) <-chan struct{} {
	out := make(chan struct{}, 1)
	for _, c := range chans {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case _, ok := <-c:
					if !ok {
						return
					}
					select {
					case out <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	return out
}
