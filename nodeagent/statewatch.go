package nodeagent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// stateWatchDelay is how long the state directory watch gathers events
// after the first one before it wakes the agent: a key written through a
// temporary file and a link or rename is a burst of events, one pass is
// enough for it.
const stateWatchDelay = 100 * time.Millisecond

// stateEvent is what one event in the state directory means to the agent.
type stateEvent int

const (
	// stateIgnore: not a key file (a temporary file of a key being
	// written, anything else in the directory).
	stateIgnore stateEvent = iota
	// stateWake: a key file appeared, changed, went or was replaced: the
	// agent's pass takes it up.
	stateWake
	// stateDirGone: the state directory itself went; nothing more can be
	// watched in it.
	stateDirGone
)

// classifyStateEvent says what an event of the watch on dir means: only
// the key files (wireguard.key, wireguard.next.key) wake the agent.
func classifyStateEvent(dir string, ev fsnotify.Event) stateEvent {
	if filepath.Clean(ev.Name) == filepath.Clean(dir) {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			return stateDirGone
		}
		return stateIgnore
	}
	if filepath.Dir(filepath.Clean(ev.Name)) != filepath.Clean(dir) {
		return stateIgnore
	}
	switch filepath.Base(ev.Name) {
	case WireGuardKeyFile, WireGuardNextKeyFile:
	default:
		return stateIgnore
	}
	if ev.Op&(fsnotify.Create|fsnotify.Write|fsnotify.Remove|fsnotify.Rename|fsnotify.Chmod) == 0 {
		return stateIgnore
	}
	return stateWake
}

// WatchStateDir watches the agent's state directory and signals on the
// returned channel, at most once per stateWatchDelay, when a key file
// appears, changes, goes or is replaced (kosmos agent
// --rotate-wireguard-key, a key file removed by hand), so that the agent
// takes it up at once rather than at its next resync. A missing directory
// is an error; one the kernel will not watch is a warning and a nil
// channel (the resync still reads the key files). The watch ends with ctx;
// the channel is then closed.
func WatchStateDir(ctx context.Context, dir string, log *slog.Logger) (<-chan struct{}, error) {
	if log == nil {
		log = slog.Default()
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("agent: state directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("agent: state directory %s is not a directory", dir)
	}
	// A watch the kernel refuses (the inotify limits are often used up on
	// busy nodes) costs only promptness: the resync still reads the key
	// files. It is a warning, never a reason to stop the agent, whose
	// userspace WireGuard device carries the node's encrypted traffic.
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("key files are not watched; the agent takes them up on its resync only", "dir", dir, "err", err)
		return nil, nil
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		log.Warn("key files are not watched; the agent takes them up on its resync only", "dir", dir, "err", err)
		return nil, nil
	}
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		defer w.Close()
		var fire <-chan time.Time
		events, errs := w.Events, w.Errors
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				switch classifyStateEvent(dir, ev) {
				case stateWake:
					if fire == nil {
						fire = time.After(stateWatchDelay)
					}
				case stateDirGone:
					log.Error("the state directory went: key files are no longer watched (the agent takes them up on its resync only)", "dir", dir)
					events, errs = nil, nil
				}
			case err, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				log.Error("state directory watch", "dir", dir, "err", err)
				// Events may have been lost (queue overflow): one pass
				// reads the key files again.
				if fire == nil {
					fire = time.After(stateWatchDelay)
				}
			case <-fire:
				fire = nil
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out, nil
}
