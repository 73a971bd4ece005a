package chaos_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kosmos.io/kosmos/internal/sandbox"
	"kosmos.io/kosmos/internal/testinfra/kubectl"
	"kosmos.io/kosmos/internal/testinfra/poll"
)

// logsAndExec: with the data plane, `kubectl logs` of a host pod of the
// web workload (bound to a virtual node) answers its simulated
// container's log, and `kubectl exec -- ping -c1` runs in the member
// pod's network namespace and reaches a pod of another cluster: kubectl →
// host API server → the tree's kubelet endpoint → member API server →
// simulated kubelet → `ip netns exec`.
func (c *chaos) logsAndExec(t *testing.T, ctx context.Context) {
	host := kubernetes.NewForConfigOrDie(c.sb.Env.Cluster("host").Config)
	pods, err := host.CoreV1().Pods("chaos").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("no pod of chaos/web in the host: %v", err)
	}
	pod := pods.Items[0]
	cluster := ""
	for _, m := range []string{"member-a", "member-b", "member-c"} {
		mc := kubernetes.NewForConfigOrDie(c.sb.Env.Cluster(m).Config)
		if _, err := mc.CoreV1().Pods("chaos").Get(ctx, pod.Name, metav1.GetOptions{}); err == nil {
			cluster = m
		}
	}
	if cluster == "" {
		t.Fatalf("host pod chaos/%s has no copy in a member", pod.Name)
	}
	cfg := c.sb.Env.Cluster("host").Config
	var log string
	poll.NoError(t, 30*time.Second, "kubectl logs through the virtual node", func() error {
		log, err = kubectl.Logs(ctx, cfg, "chaos", pod.Name, "web")
		return err
	})
	if want := fmt.Sprintf("simulated container web of pod chaos/%s started on %s-n", pod.Name, cluster); !strings.Contains(log, want) {
		t.Errorf("kubectl logs chaos/%s = %q, want a line %q…", pod.Name, log, want)
	}
	nodes, err := sandbox.DataplaneNodes(c.sb.Topology, 2)
	if err != nil {
		t.Fatal(err)
	}
	to := ""
	for _, p := range sandbox.PingPairs(chaosPrefix, c.sb.Topology, nodes) {
		if strings.HasPrefix(p.Name, "pod "+cluster+"/") && p.To.Is4() {
			to = p.To.String()
			break
		}
	}
	if to == "" {
		t.Fatalf("no pod of another cluster for %s to ping", cluster)
	}
	start := time.Now()
	out, stderr, err := kubectl.Exec(ctx, cfg, "chaos", pod.Name, "web", "ping", "-c1", "-W", "3", to)
	t.Logf("kubectl exec chaos/%s (in %s) -- ping -c1 %s: %s in %s\n%s%s", pod.Name, cluster, to, errOr(err), time.Since(start).Round(time.Millisecond), out, stderr)
	if err != nil || !strings.Contains(out, "1 received") {
		t.Errorf("kubectl exec -- ping -c1 %s from chaos/%s in %s: %v\n%s%s", to, pod.Name, cluster, err, out, stderr)
	}
}

func errOr(err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok"
}
