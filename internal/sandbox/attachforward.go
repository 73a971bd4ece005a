// This file is the rest of the simulated machines' kubelet API:
// `kubectl attach` and `kubectl port-forward` (kubeletserver.go serves
// logs and exec).
//
// Attach: a simulated container's output is its log (one line when it
// started); attach writes it to stdout, then, when the caller sends
// stdin, copies stdin back to stdout until the caller closes it (the
// container behaves as `cat`). Without stdin the stream ends after the
// log: a simulated container writes nothing more, and a stream that never
// ended would only hang the caller.
//
// Port-forward: with the data plane, each forwarded connection is a TCP
// connection to 127.0.0.1:PORT opened inside the network namespace of the
// machine's pod, as a container runtime dials the port in the pod's
// namespace; whatever listens there (on any address of the namespace)
// answers. Without the data plane there is no namespace, and each stream
// gets an error that says so.

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	streaming "k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// Streams stay open this long without traffic; they must be created
// within streamCreation.
const (
	streamIdle     = 4 * time.Hour
	streamCreation = 30 * time.Second
)

// serveAttach answers /attach/NS/POD/CONTAINER for pod p.
func (k *kubelet) serveAttach(w http.ResponseWriter, r *http.Request, p *corev1.Pod, container string, lines []logLine) {
	opts, err := streaming.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	streaming.ServeAttach(w, r, podAttach{lines: lines}, p.Name, string(p.UID), container, opts, streamIdle, streamCreation, streaming.SupportedStreamingProtocols)
}

// podAttach is the simulated container's console: its log, then an echo
// of stdin.
type podAttach struct{ lines []logLine }

// AttachContainer implements streaming.Attacher.
func (a podAttach) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan streaming.TerminalSize) error {
	if out == nil {
		return nil
	}
	text, _ := renderLog(a.lines, nil)
	if _, err := io.WriteString(out, text); err != nil {
		return err
	}
	if in == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, in)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The caller went away: close both ends, so that the copy above
		// ends too instead of waiting on stdin for ever (not waited for:
		// a stream's read side may end only when the server resets it).
		_ = out.Close()
		if c, ok := in.(io.Closer); ok {
			_ = c.Close()
		}
		return nil
	}
}

// servePortForward answers /portForward/NS/POD for pod p.
func (k *kubelet) servePortForward(w http.ResponseWriter, r *http.Request, p *corev1.Pod) {
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f := podForward{pod: p.Namespace + "/" + p.Name, cluster: k.cluster}
	if k.netns != nil {
		f.netns = k.netns(p.Spec.NodeName)
	}
	portforward.ServePortForward(w, r, f, p.Name, string(p.UID), opts, streamIdle, streamCreation, portforward.SupportedProtocols)
}

// podForward forwards streams to ports of one pod's network namespace
// (none without the data plane).
type podForward struct {
	pod, cluster, netns string
}

// PortForward implements portforward.PortForwarder: it copies between
// stream and a connection to port inside the pod's namespace until the
// port's side ends.
func (f podForward) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	if f.netns == "" {
		return fmt.Errorf("the sandbox runs no data plane (kosmos up --dataplane): pod %s in cluster %s has no network namespace to forward port %d to", f.pod, f.cluster, port)
	}
	if port <= 0 || port > 65535 {
		return fmt.Errorf("port %d: not a TCP port", port)
	}
	var conn net.Conn
	err := InNetns(f.netns, func() error {
		var err error
		d := net.Dialer{Timeout: 10 * time.Second}
		conn, err = d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
		return err
	})
	if err != nil {
		return fmt.Errorf("pod %s in cluster %s: port %d: %w", f.pod, f.cluster, port, err)
	}
	return relay(ctx, conn, stream)
}

// relay copies between the port's connection and the caller's stream.
// When either copy ends, or ctx is done, both conn and stream are closed
// and relay returns: the other copy ends as its side is closed (the
// stream's read side when the streaming server resets it, as it does for
// a finished forward), never waiting on a side nobody uses any more. A
// container that closes its socket ends the stream; a caller that closes
// the stream ends the connection (no half-close: an answer still in
// flight then is lost, as with a runtime that closes both ends).
func relay(ctx context.Context, conn net.Conn, stream io.ReadWriteCloser) error {
	errs := make(chan error, 2)
	go func() {
		_, err := io.Copy(conn, stream)
		errs <- err
	}()
	go func() {
		_, err := io.Copy(stream, conn)
		errs <- err
	}()
	var err error
	select {
	case err = <-errs:
	case <-ctx.Done():
	}
	_ = conn.Close()
	_ = stream.Close()
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) {
		err = nil
	}
	return err
}
