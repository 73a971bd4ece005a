// This file is the kubelet API of the simulated machines: what a member's
// API server calls for `kubectl logs` and `kubectl exec` on a pod bound to
// one of them (and, through the tree's virtual nodes, what the host's
// calls reach in the end).
//
// All machines of a cluster share one endpoint on loopback: each Node
// carries a Hostname address "localhost" and the endpoint's port, so the
// member's API server (which prefers Hostname addresses) dials it, while
// the machines' InternalIP addresses stay the underlay the planner uses.
// Callers must present a client certificate the sandbox's kubelet client
// CA signed: the API servers' --kubelet-client-certificate. There is no
// further authorization, as for a kubelet with anonymous auth off and
// the AlwaysAllow authorizer.
//
// Logs: a simulated container writes one line when it starts, naming its
// pod, container, machine and cluster (containerLog).
//
// Exec: with the data plane, the command runs, as the user who ran the
// sandbox, inside the network namespace of the machine's pod (`ip netns
// exec`); every pod of a machine shares that one namespace. Without the
// data plane there is nowhere to run it, and the caller gets an error that
// says so. Attach and port-forward: attachforward.go.

package sandbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	streaming "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// logLine is one line a simulated container wrote.
type logLine struct {
	at   time.Time
	text string
}

// containerLog is the log of container c of pod p, run by cluster's
// simulated kubelet: one line when it started (from its status), and
// false when the pod has no such container.
func containerLog(cluster string, p *corev1.Pod, c string) ([]logLine, bool) {
	found := false
	for _, sc := range p.Spec.Containers {
		found = found || sc.Name == c
	}
	if !found {
		return nil, false
	}
	var out []logLine
	for _, st := range p.Status.ContainerStatuses {
		if st.Name != c || st.State.Running == nil {
			continue
		}
		out = append(out, logLine{at: st.State.Running.StartedAt.UTC(),
			text: fmt.Sprintf("simulated container %s of pod %s/%s started on %s (cluster %s), image %s", c, p.Namespace, p.Name, p.Spec.NodeName, cluster, st.Image)})
	}
	return out, true
}

// renderLog writes lines as the kubelet's log endpoint does for the query
// q: tailLines keeps the last lines, timestamps prefixes each with its
// RFC 3339 time. A malformed tailLines is an error.
func renderLog(lines []logLine, q map[string][]string) (string, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if t := get("tailLines"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return "", fmt.Errorf("tailLines %q: not a count of lines", t)
		}
		lines = lines[max(0, len(lines)-n):]
	}
	var b strings.Builder
	for _, l := range lines {
		if get("timestamps") == "true" {
			b.WriteString(l.at.Format(time.RFC3339Nano) + " ")
		}
		b.WriteString(l.text + "\n")
	}
	return b.String(), nil
}

// serve answers the kubelet API of the cluster's machines on ln until ctx
// ends; callers need a client certificate that pki's CA signed.
func (k *kubelet) serve(ctx context.Context, ln net.Listener, pki *kubeletPKI) error {
	cert, err := servingCertificate(k.cluster + "-kubelet")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: k, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.Pool,
			MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("simulated kubelet of %s: %w", k.cluster, err)
	}
	return nil
}

// ServeHTTP answers /containerLogs/NS/POD/CONTAINER (GET),
// /exec|attach/NS/POD/CONTAINER and /portForward/NS/POD (GET: WebSocket,
// POST: SPDY) for pods on the cluster's machines.
func (k *kubelet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.URL.Path == "/healthz" {
		_, _ = w.Write([]byte("ok"))
		return
	}
	if len(parts) == 3 && parts[0] == "portForward" {
		p, ok := k.pod(parts[1], parts[2])
		if !ok {
			http.Error(w, fmt.Sprintf("pod %s/%s is not on a machine of cluster %s", parts[1], parts[2], k.cluster), http.StatusNotFound)
			return
		}
		k.servePortForward(w, r, p) // attachforward.go
		return
	}
	if len(parts) != 4 || (parts[0] != "containerLogs" && parts[0] != "exec" && parts[0] != "attach") {
		http.NotFound(w, r)
		return
	}
	op, ns, name, container := parts[0], parts[1], parts[2], parts[3]
	p, ok := k.pod(ns, name)
	if !ok {
		http.Error(w, fmt.Sprintf("pod %s/%s is not on a machine of cluster %s", ns, name, k.cluster), http.StatusNotFound)
		return
	}
	lines, ok := containerLog(k.cluster, p, container)
	if !ok {
		http.Error(w, fmt.Sprintf("pod %s/%s has no container %q", ns, name, container), http.StatusNotFound)
		return
	}
	if op == "containerLogs" {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		out, err := renderLog(lines, r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(out))
		return
	}
	if op == "attach" {
		k.serveAttach(w, r, p, container, lines) // attachforward.go
		return
	}
	opts, err := streaming.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	run := podExec{pod: ns + "/" + name, cluster: k.cluster}
	if k.netns != nil {
		run.netns = k.netns(p.Spec.NodeName)
	}
	streaming.ServeExec(w, r, run, name, string(p.UID), container, r.URL.Query()[corev1.ExecCommandParam], opts,
		4*time.Hour, 30*time.Second, streaming.SupportedStreamingProtocols)
}

// pod is the pod ns/name when it is bound to one of the cluster's machines.
func (k *kubelet) pod(ns, name string) (*corev1.Pod, bool) {
	k.mu.Lock()
	lister := k.lister
	k.mu.Unlock()
	if lister == nil {
		return nil, false
	}
	p, err := lister.Pods(ns).Get(name)
	if err != nil {
		return nil, false
	}
	k.mu.Lock()
	_, ours := k.nodes[p.Spec.NodeName]
	k.mu.Unlock()
	return p, ours
}

// podExec runs exec commands for one pod: in netns, or nowhere (an
// error) when the sandbox has no data plane.
type podExec struct {
	pod, cluster, netns string
}

// ExecInContainer implements streaming.Executor. A command's exit status
// goes back to the caller as the container runtime's would.
func (e podExec) ExecInContainer(ctx context.Context, _, _, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, _ bool, _ <-chan streaming.TerminalSize, _ time.Duration) error {
	if e.netns == "" {
		return fmt.Errorf("the sandbox runs no data plane (kosmos up --dataplane): the simulated container %s of pod %s in cluster %s has no network namespace to run a command in", container, e.pod, e.cluster)
	}
	if len(cmd) == 0 {
		return errors.New("no command")
	}
	c := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", e.netns}, cmd...)...)
	if in != nil {
		c.Stdin = in
	}
	if out != nil {
		c.Stdout = out
	}
	if errOut != nil {
		c.Stderr = errOut
	}
	c.WaitDelay = time.Second
	err := c.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.Exited() {
		return utilexec.CodeExitError{Err: err, Code: exitErr.ExitCode()}
	}
	return err
}
