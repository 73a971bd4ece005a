package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestContainerLog(t *testing.T) {
	started := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	pod := func(running bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-0"},
			Spec: corev1.PodSpec{NodeName: "member-a-n1", Containers: []corev1.Container{{Name: "web"}, {Name: "side"}}}}
		if running {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", Image: "nginx:1.27",
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}}}}
		}
		return p
	}
	const line = "simulated container web of pod shop/web-0 started on member-a-n1 (cluster member-a), image nginx:1.27\n"
	for _, tc := range []struct {
		name      string
		pod       *corev1.Pod
		container string
		query     map[string][]string
		want      string
		found     bool
		wantErr   bool
	}{
		{name: "running container", pod: pod(true), container: "web", want: line, found: true},
		{name: "timestamps", pod: pod(true), container: "web", query: map[string][]string{"timestamps": {"true"}},
			want: "2026-11-29T12:00:00Z " + line, found: true},
		{name: "tail 0", pod: pod(true), container: "web", query: map[string][]string{"tailLines": {"0"}}, want: "", found: true},
		{name: "tail 5", pod: pod(true), container: "web", query: map[string][]string{"tailLines": {"5"}}, want: line, found: true},
		{name: "bad tail", pod: pod(true), container: "web", query: map[string][]string{"tailLines": {"-1"}}, found: true, wantErr: true},
		{name: "not started: empty log", pod: pod(false), container: "web", want: "", found: true},
		{name: "other container: empty log", pod: pod(true), container: "side", want: "", found: true},
		{name: "no such container", pod: pod(true), container: "db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, found := containerLog("member-a", tc.pod, tc.container)
			if found != tc.found {
				t.Fatalf("found = %v, want %v", found, tc.found)
			}
			got, err := renderLog(lines, tc.query)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("log = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPodExecWithoutDataplane(t *testing.T) {
	err := podExec{pod: "shop/web-0", cluster: "member-a"}.ExecInContainer(t.Context(), "web-0", "", "web", []string{"true"}, nil, nil, nil, false, nil, 0)
	if err == nil || !containsAll(err.Error(), "no data plane", "--dataplane", "shop/web-0", "member-a") {
		t.Errorf("exec without a data plane: %v, want an error naming the pod, the cluster and --dataplane", err)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// TestWithKubeletEndpoint: a machine advertises its kubelet as a Hostname
// address (which API servers prefer) and the port, keeps its InternalIP
// (the planner's underlay), and the input node is not modified.
func TestWithKubeletEndpoint(t *testing.T) {
	in := corev1.Node{Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.11"}}}}
	got := withKubeletEndpoint(in, 40123)
	want := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.11"}, {Type: corev1.NodeHostName, Address: "localhost"}}
	if fmt.Sprint(got.Status.Addresses) != fmt.Sprint(want) || got.Status.DaemonEndpoints.KubeletEndpoint.Port != 40123 {
		t.Errorf("withKubeletEndpoint = %v port %d, want %v port 40123", got.Status.Addresses, got.Status.DaemonEndpoints.KubeletEndpoint.Port, want)
	}
	if len(in.Status.Addresses) != 1 || in.Status.DaemonEndpoints.KubeletEndpoint.Port != 0 {
		t.Errorf("the input node was modified: %v", in.Status)
	}
}

// TestPodAttach: a simulated container's console is its log, then its
// stdin echoed back; with no stdout requested nothing is written.
func TestPodAttach(t *testing.T) {
	lines := []logLine{{at: time.Unix(0, 0), text: "started"}}
	for _, tc := range []struct {
		name  string
		stdin string
		want  string
	}{
		{"log only", "", "started\n"},
		{"log, then stdin", "hello\nworld\n", "started\nhello\nworld\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in io.Reader
			if tc.stdin != "" {
				in = strings.NewReader(tc.stdin)
			}
			var out bytes.Buffer
			if err := (podAttach{lines: lines}).AttachContainer(context.Background(), "p", "u", "c", in, nopCloser{&out}, nil, false, nil); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("attach wrote %q, want %q", out.String(), tc.want)
			}
		})
	}
	if err := (podAttach{lines: lines}).AttachContainer(context.Background(), "p", "u", "c", nil, nil, nil, false, nil); err != nil {
		t.Errorf("attach without stdout: %v", err)
	}
}

// TestPortForwardWithoutDataplane: without a data plane a forwarded
// stream gets an error that names --dataplane, and a bad port is refused.
func TestPortForwardWithoutDataplane(t *testing.T) {
	err := (podForward{pod: "shop/web-0", cluster: "member-a"}).PortForward(context.Background(), "web-0", "u", 8080, nopRWC{})
	if err == nil || !strings.Contains(err.Error(), "--dataplane") || !strings.Contains(err.Error(), "shop/web-0") {
		t.Errorf("without a data plane: %v", err)
	}
	err = (podForward{pod: "shop/web-0", cluster: "member-a", netns: "ksb-none"}).PortForward(context.Background(), "web-0", "u", 70000, nopRWC{})
	if err == nil || !strings.Contains(err.Error(), "not a TCP port") {
		t.Errorf("port 70000: %v", err)
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

type nopRWC struct{}

func (nopRWC) Read([]byte) (int, error)    { return 0, io.EOF }
func (nopRWC) Write(p []byte) (int, error) { return len(p), nil }
func (nopRWC) Close() error                { return nil }
