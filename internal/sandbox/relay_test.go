package sandbox

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// ended waits (10 s at most) for done and says how long it took.
func ended(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	start := time.Now()
	select {
	case <-done:
		t.Logf("%s after %s", what, time.Since(start).Round(time.Microsecond))
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10 s", what)
	}
}

// readsToEnd reads r until it ends, then closes the returned channel.
func readsToEnd(r io.Reader) <-chan struct{} {
	done := make(chan struct{})
	go func() { defer close(done); _, _ = io.Copy(io.Discard, r) }()
	return done
}

// TestRelayClosesBothSides: port-forward's relay between a port's
// connection and the caller's stream ends both when either side ends or
// the caller's context is done, so nothing is left waiting on a side
// nobody uses any more.
func TestRelayClosesBothSides(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(cancel context.CancelFunc, port, caller net.Conn)
	}{
		{"the port closes its socket", func(_ context.CancelFunc, port, _ net.Conn) { port.Close() }},
		{"the caller closes the stream", func(_ context.CancelFunc, _, caller net.Conn) { caller.Close() }},
		{"the caller's context is done", func(cancel context.CancelFunc, _, _ net.Conn) { cancel() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, port := net.Pipe()     // relay's side, the container's side
			stream, caller := net.Pipe() // relay's side, the caller's side
			defer port.Close()
			defer caller.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			returned := make(chan struct{})
			go func() { defer close(returned); _ = relay(ctx, conn, stream) }()
			portEnd, callerEnd := readsToEnd(port), readsToEnd(caller)
			tc.end(cancel, port, caller)
			ended(t, "relay returned", returned)
			ended(t, "the container's side ended", portEnd)
			ended(t, "the caller's side ended", callerEnd)
		})
	}
}

// TestAttachEndsWithItsContext: an attach with stdin whose caller goes
// away (context done) closes stdout and stdin instead of waiting for
// stdin for ever.
func TestAttachEndsWithItsContext(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	defer inW.Close()
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		_ = podAttach{}.AttachContainer(ctx, "", "", "", inR, outW, nil, false, nil)
	}()
	outEnd := readsToEnd(outR)
	cancel()
	ended(t, "attach returned", returned)
	ended(t, "stdout closed", outEnd)
	if _, err := inW.Write([]byte("x")); err == nil {
		t.Errorf("stdin still read after the attach ended")
	}
}
