package nodeagent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestLinuxWireGuardNextKeyWatched: an agent running with its resync an
// hour away takes up a next key written by --rotate-wireguard-key within
// moments (the state directory watch wakes its pass), and takes up the
// next key's removal just as fast. Without the watch, both wait for the
// resync.
func TestLinuxWireGuardNextKeyWatched(t *testing.T) {
	lk := freshKernel(t)
	dir := filepath.Join(t.TempDir(), "state")
	key, err := LoadOrCreateWireGuardKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := NewWireGuard(key, dir, log)
	t.Cleanup(func() { w.Close(); _ = TeardownWireGuard() })
	ctx, cancel := context.WithCancel(context.Background())
	keys, err := WatchStateDir(ctx, dir, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	spec := wgSpec(peerB1)
	var mu sync.Mutex
	passes := 0
	wait := runHere(t, ctx, lk, func() (*v1alpha1.NodeConfigSpec, error) { return spec, nil }, Options{
		Resync: time.Hour, Changes: Merge(ctx, keys), Log: log, Before: w.Sync, After: w.Settle,
		Report: func(*v1alpha1.NodeConfigSpec, Result, error) { mu.Lock(); defer mu.Unlock(); passes++ },
	})
	defer func() { cancel(); wait() }()
	poll.Until(t, 20*time.Second, "the first pass", func() bool { mu.Lock(); defer mu.Unlock(); return passes > 0 })
	if st := w.Status(); st.NextPublicKey != "" {
		t.Fatalf("next key %q before any rotation", st.NextPublicKey)
	}

	next, err := RotateWireGuardKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	took := poll.Until(t, 10*time.Second, "the next key published", func() bool { return w.Status().NextPublicKey == next.PublicKey() })
	t.Logf("next key taken up %v after --rotate-wireguard-key (resync: 1h)", took.Round(time.Millisecond))
	// ~1 s is what the issue asks; twice that tolerates a loaded machine.
	if took > 2*time.Second {
		t.Errorf("next key taken up after %v, want within ~1 s", took)
	}

	if err := os.Remove(filepath.Join(dir, WireGuardNextKeyFile)); err != nil {
		t.Fatal(err)
	}
	took = poll.Until(t, 10*time.Second, "the rotation abandoned", func() bool { return w.Status().NextPublicKey == "" })
	t.Logf("next key's removal taken up after %v", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("next key's removal taken up after %v, want within ~1 s", took)
	}
	if st := w.Status(); st.PublicKey != key.PublicKey() {
		t.Errorf("public key %s, want the unchanged %s", st.PublicKey, key.PublicKey())
	}
}

// runHere runs the agent's loop (Run) until ctx ends in a goroutine whose
// thread is in the test's network namespace (the one freshKernel entered:
// the netlink sockets and the WireGuard device are made there); the
// returned function waits for it to end.
func runHere(t testing.TB, ctx context.Context, k Kernel, src Source, opts Options) (wait func()) {
	t.Helper()
	here, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer here.Close()
		runtime.LockOSThread() // this thread ends with the goroutine
		if err := netns.Set(here); err != nil {
			return
		}
		Run(ctx, k, src, opts)
	}()
	return func() { <-done }
}
