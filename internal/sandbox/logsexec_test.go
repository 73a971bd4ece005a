package sandbox

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kosmos.io/kosmos/internal/testinfra/kubectl"
	"kosmos.io/kosmos/internal/testinfra/poll"
)

// checkLogsAndExec: `kubectl logs` of a host pod of shop/web bound to a
// virtual node answers the simulated container's log, through host API
// server → tree's kubelet endpoint → member API server → simulated
// kubelet; `kubectl exec` reaches the simulated kubelet too, which says
// that without a data plane there is nowhere to run the command.
func checkLogsAndExec(ctx context.Context, t *testing.T, sb *Sandbox, host kubernetes.Interface, members map[string]kubernetes.Interface) {
	t.Helper()
	pods, err := host.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("no pod of shop/web in the host: %v", err)
	}
	pod := pods.Items[0]
	cluster := ""
	for name, m := range members {
		if _, err := m.CoreV1().Pods("shop").Get(ctx, pod.Name, metav1.GetOptions{}); err == nil {
			cluster = name
		}
	}
	if cluster == "" {
		t.Fatalf("host pod shop/%s (node %s) has no copy in a member", pod.Name, pod.Spec.NodeName)
	}
	cfg := sb.Env.Cluster("host").Config
	start := time.Now()
	var log string
	poll.NoError(t, 30*time.Second, "kubectl logs through the virtual node", func() error {
		log, err = kubectl.Logs(ctx, cfg, "shop", pod.Name, "web")
		return err
	})
	t.Logf("kubectl logs shop/%s (node %s) in %s: %q", pod.Name, pod.Spec.NodeName, time.Since(start).Round(time.Millisecond), log)
	want := fmt.Sprintf("simulated container web of pod shop/%s started on %s-n", pod.Name, cluster)
	if !strings.Contains(log, want) || !strings.Contains(log, "(cluster "+cluster+")") {
		t.Errorf("kubectl logs shop/%s = %q, want a line %q… (cluster %s)", pod.Name, log, want, cluster)
	}
	_, _, err = kubectl.Exec(ctx, cfg, "shop", pod.Name, "web", "true")
	if err == nil || !strings.Contains(err.Error(), "no data plane") || !strings.Contains(err.Error(), "--dataplane") {
		t.Errorf("kubectl exec without a data plane: %v, want the simulated kubelet's error naming --dataplane", err)
	}
}
