// Package kubectl does what `kubectl logs` and `kubectl exec` do, with
// the same client-go calls kubectl makes (the repository builds no
// kubectl binary): logs are a GET of the pod's log subresource; exec
// opens the pod's exec subresource over WebSocket and falls back to SPDY
// when the server cannot upgrade to WebSocket.
//
// # Usage
//
//	out, err := kubectl.Logs(ctx, cfg, "shop", "web-0", "web")
//	stdout, stderr, err := kubectl.Exec(ctx, cfg, "shop", "web-0", "web", "ping", "-c1", "10.0.0.1")
package kubectl

import (
	"bytes"
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// Logs is `kubectl logs -n ns pod -c container`.
func Logs(ctx context.Context, cfg *rest.Config, ns, pod, container string) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	out, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("logs of %s/%s: %w", ns, pod, err)
	}
	return string(out), nil
}

// Exec is `kubectl exec -n ns pod -c container -- cmd...`: its stdout,
// its stderr, and an error when it could not run or exited non-zero.
func Exec(ctx context.Context, cfg *rest.Config, ns, pod, container string, cmd ...string) (string, string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", "", err
	}
	req := cs.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	if err != nil {
		return "", "", err
	}
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
	if err != nil {
		return "", "", err
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return "", "", err
	}
	var stdout, stderr bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		err = fmt.Errorf("exec %v in %s/%s: %w", cmd, ns, pod, err)
	}
	return stdout.String(), stderr.String(), err
}
