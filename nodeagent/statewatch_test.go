package nodeagent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"kosmos.io/kosmos/internal/testinfra/poll"
)

// TestWireGuardStateEvent: only the key files wake the agent; the
// temporary files a key is written through, other files and other
// directories do not; the state directory going is told apart.
func TestWireGuardStateEvent(t *testing.T) {
	dir := "/var/lib/kosmos/agent"
	for _, tc := range []struct {
		name string
		op   fsnotify.Op
		want stateEvent
	}{
		{dir + "/wireguard.next.key", fsnotify.Create, stateWake},
		{dir + "/wireguard.next.key", fsnotify.Remove, stateWake},
		{dir + "/wireguard.next.key", fsnotify.Rename, stateWake},
		{dir + "/wireguard.key", fsnotify.Create, stateWake},
		{dir + "/wireguard.key", fsnotify.Write, stateWake},
		{dir + "/wireguard.key", fsnotify.Chmod, stateWake},
		{dir + "/wireguard.key", fsnotify.Remove, stateWake},
		{dir + "/.wireguard-key-1234", fsnotify.Create, stateIgnore},
		{dir + "/.wireguard-key-1234", fsnotify.Remove, stateIgnore},
		{dir + "/other", fsnotify.Write, stateIgnore},
		{dir + "/sub/wireguard.key", fsnotify.Create, stateIgnore},
		{"/elsewhere/wireguard.key", fsnotify.Create, stateIgnore},
		{dir, fsnotify.Remove, stateDirGone},
		{dir + "/", fsnotify.Rename, stateDirGone},
		{dir, fsnotify.Chmod, stateIgnore},
		{dir + "/wireguard.key", 0, stateIgnore},
	} {
		if got := classifyStateEvent(dir, fsnotify.Event{Name: tc.name, Op: tc.op}); got != tc.want {
			t.Errorf("%s %v: %v, want %v", tc.name, tc.op, got, tc.want)
		}
	}
}

// TestWireGuardStateDirWatch: a missing state directory, or a file in its
// place, is a clear error at start; a burst of key file events wakes the
// agent, an unrelated file does not; the watch ends with its
// context (its channel closes).
func TestWireGuardStateDirWatch(t *testing.T) {
	base := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := WatchStateDir(ctx, filepath.Join(base, "missing"), nil); err == nil || !strings.Contains(err.Error(), "state directory") {
		t.Errorf("missing directory: %v, want a state directory error", err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := WatchStateDir(ctx, file, nil); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file as the directory: %v, want not a directory", err)
	}

	dir := filepath.Join(base, "state")
	if _, err := LoadOrCreateWireGuardKey(dir); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	c, err := WatchStateDir(wctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An unrelated file does not wake the agent (a wake-up would come
	// within the gathering delay).
	if err := os.WriteFile(filepath.Join(dir, "unrelated"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	quiet := time.NewTimer(5 * stateWatchDelay)
	defer quiet.Stop()
	select {
	case <-c:
		t.Error("an unrelated file woke the agent")
	case <-quiet.C:
	}
	for _, step := range []struct {
		what   string
		change func() error
	}{
		{"rotate", func() error { _, err := RotateWireGuardKey(dir); return err }},
		{"remove", func() error { return os.Remove(filepath.Join(dir, WireGuardNextKeyFile)) }},
	} {
		what := step.what
		if err := step.change(); err != nil {
			t.Fatal(err)
		}
		took := poll.Until(t, 10*time.Second, "a wake-up after "+what, func() bool {
			select {
			case <-c:
				return true
			default:
				return false
			}
		})
		t.Logf("woken %v after %s", took.Round(time.Millisecond), what)
	}
	wcancel()
	poll.Until(t, 10*time.Second, "the watch to end", func() bool {
		select {
		case _, ok := <-c:
			return !ok
		default:
			return false
		}
	})
}
