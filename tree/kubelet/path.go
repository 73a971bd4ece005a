// This file reads kubelet request paths and queries and turns them into
// the member API's.

package kubelet

import (
	"net/http"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// kubeletPath is a parsed kubelet request path.
type kubeletPath struct {
	op, ns, pod, container string
}

// parsePath reads /containerLogs|exec|attach/NS/POD/CONTAINER and
// /portForward/NS/POD.
func parsePath(p string) (kubeletPath, bool) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case len(parts) == 4 && (parts[0] == "containerLogs" || parts[0] == "exec" || parts[0] == "attach"):
		return kubeletPath{parts[0], parts[1], parts[2], parts[3]}, true
	case len(parts) == 3 && parts[0] == "portForward":
		return kubeletPath{op: parts[0], ns: parts[1], pod: parts[2]}, true
	}
	return kubeletPath{}, false
}

// verb is what the caller needs on nodes/proxy: logs are read (get);
// streams (exec, attach, port-forward) act (create).
func (kp kubeletPath) verb() string {
	if kp.op == "containerLogs" {
		return "get"
	}
	return "create"
}

// allows tells whether the operation accepts the HTTP method: logs GET
// only; streams GET (WebSocket) or POST (SPDY).
func (kp kubeletPath) allows(method string) bool {
	if kp.op == "containerLogs" {
		return method == http.MethodGet
	}
	return method == http.MethodPost || method == http.MethodGet
}

// allowedQuery lists, per operation, the kubelet query parameters that
// are passed on (renamed where the member API calls them otherwise);
// anything else is dropped.
var allowedQuery = map[string]map[string]string{
	"containerLogs": {"follow": "follow", "previous": "previous", "sinceSeconds": "sinceSeconds", "sinceTime": "sinceTime",
		"timestamps": "timestamps", "tailLines": "tailLines", "limitBytes": "limitBytes"},
	"exec": {corev1.ExecCommandParam: "command", corev1.ExecStdinParam: "stdin", corev1.ExecStdoutParam: "stdout",
		corev1.ExecStderrParam: "stderr", corev1.ExecTTYParam: "tty"},
	"attach": {corev1.ExecStdinParam: "stdin", corev1.ExecStdoutParam: "stdout", corev1.ExecStderrParam: "stderr",
		corev1.ExecTTYParam: "tty"},
	"portForward": {"port": "ports"},
}

// memberQuery turns kubelet query parameters into the member API's: only
// the allowed ones, renamed; the container joins.
func memberQuery(kp kubeletPath, in url.Values) url.Values {
	out := url.Values{}
	for k, vs := range in {
		if to, ok := allowedQuery[kp.op][k]; ok {
			out[to] = vs
		}
	}
	if kp.container != "" {
		out.Set("container", kp.container)
	}
	return out
}

// memberOps names each kubelet operation's pod subresource.
var memberOps = map[string]string{"containerLogs": "log", "exec": "exec", "attach": "attach", "portForward": "portforward"}
