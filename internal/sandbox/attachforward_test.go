package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kosmos.io/kosmos/internal/testinfra/kubectl"
	"kosmos.io/kosmos/internal/testinfra/networld"
	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/tree"
)

// attachTopology: the smallest tree, a host and one Aggregate member.
const attachTopology = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: attach}
spec:
  clusters:
    - name: host
      role: host
      kubeconfig: {secretRef: {name: kubeconfig-host}, context: host}
      network: {podCIDRs: [10.10.0.0/16], serviceCIDRs: [10.11.0.0/16]}
    - name: member-a
      role: member
      kubeconfig:
        secretRef: {name: kubeconfig-member-a}
        treeSecretRef: {name: kubeconfig-member-a, namespace: kosmos-tree}
        context: member-a
      network: {podCIDRs: [10.244.0.0/16], serviceCIDRs: [10.96.0.0/16]}
      tree: {mode: Aggregate}
`

// TestAttachAndPortForward: in a sandbox with its data plane (`kosmos up
// --dataplane`), on a host pod bound to the member's virtual node, through
// kubectl → host API server → the tree's kubelet endpoint → member API
// server → simulated kubelet:
//   - `kubectl attach` streams the simulated container's log, and with
//     stdin echoes it back;
//   - `kubectl port-forward` reaches a TCP echo server listening in the
//     network namespace of the member machine's pod.
func TestAttachAndPortForward(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the sandbox's data plane needs root (network namespaces); make test runs as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "kosmos")
	if out, err := exec.Command("go", "build", "-o", bin, "kosmos.io/kosmos/cmd/kosmos").CombinedOutput(); err != nil {
		t.Fatalf("build kosmos: %v\n%s", err, out)
	}
	topo := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(topo, []byte(attachTopology), 0o644); err != nil {
		t.Fatal(err)
	}
	const prefix = "ksbaf-"
	sb, err := Start(ctx, Options{Topology: topo, Dir: filepath.Join(dir, "state"), NodesPerCluster: 1, Dataplane: true, AgentCommand: bin,
		NetnsPrefix: prefix, Progress: testWriter{t},
		SchedulerConfig: filepath.Join("..", "..", "kustomize", "base", "scheduler", "scheduler-config.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sb.Stop(); err != nil {
			t.Error(err)
		}
	}()
	if err := sb.FirstApply(ctx, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := sb.StartControllers(); err != nil {
		t.Fatal(err)
	}
	hostCfg := sb.Env.Cluster("host").Config
	host := kubernetes.NewForConfigOrDie(hostCfg)
	member := kubernetes.NewForConfigOrDie(sb.Env.Cluster("member-a").Config)
	if _, err := host.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := host.CoreV1().ServiceAccounts("shop").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	poll.NoError(t, 2*time.Minute, "virtual node kosmos-member-a Ready", func() error {
		n, err := host.CoreV1().Nodes().Get(ctx, "kosmos-member-a", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("conditions %v", n.Status.Conditions)
	})
	no := false
	_, err = host.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "echo-0"}, Spec: corev1.PodSpec{
		NodeName: "kosmos-member-a", AutomountServiceAccountToken: &no,
		Tolerations: []corev1.Toleration{{Key: tree.TaintLeaf, Operator: corev1.TolerationOpExists}},
		Containers:  []corev1.Container{{Name: "echo", Image: "shop/echo:1"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var copyPod *corev1.Pod
	poll.NoError(t, time.Minute, "shop/echo-0 Running in member-a", func() error {
		copyPod, err = member.CoreV1().Pods("shop").Get(ctx, "echo-0", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if copyPod.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("phase %s", copyPod.Status.Phase)
		}
		return nil
	})

	// attach: the log, then stdin echoed.
	want := fmt.Sprintf("simulated container echo of pod shop/echo-0 started on %s (cluster member-a)", copyPod.Spec.NodeName)
	var out string
	start := time.Now()
	poll.NoError(t, 30*time.Second, "kubectl attach through the virtual node", func() error {
		out, err = kubectl.Attach(ctx, hostCfg, "shop", "echo-0", "echo", nil)
		return err
	})
	t.Logf("kubectl attach shop/echo-0 in %s: %q", time.Since(start).Round(time.Millisecond), out)
	if !strings.Contains(out, want) {
		t.Errorf("kubectl attach = %q, want the line %q…", out, want)
	}
	out, err = kubectl.Attach(ctx, hostCfg, "shop", "echo-0", "echo", strings.NewReader("hello from stdin\n"))
	t.Logf("kubectl attach -i shop/echo-0: %q", out)
	if err != nil || !strings.Contains(out, want) || !strings.HasSuffix(out, "hello from stdin\n") {
		t.Errorf("kubectl attach -i = %q, %v; want the log and then stdin", out, err)
	}

	// port-forward: a TCP echo server in the member machine's pod
	// namespace, reached through the forward.
	podNS := (&networld.World{Prefix: prefix}).PodNS("member-a", copyPod.Spec.NodeName)
	var ln net.Listener
	if err := InNetns(podNS, func() error {
		ln, err = net.Listen("tcp", ":7070")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s := bufio.NewScanner(c)
				for s.Scan() {
					fmt.Fprintf(c, "echo from %s: %s\n", podNS, s.Text())
				}
			}()
		}
	}()
	local, stop, err := kubectl.PortForward(ctx, hostCfg, "shop", "echo-0", 7070)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for i := range 3 { // three connections over one forward
		start := time.Now()
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", local), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "ping %d\n", i)
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		t.Logf("port-forward :%d → shop/echo-0:7070, connection %d: %q in %s", local, i, line, time.Since(start).Round(time.Millisecond))
		if want := fmt.Sprintf("echo from %s: ping %d\n", podNS, i); err != nil || line != want {
			t.Errorf("port-forward connection %d answered %q (%v), want %q", i, line, err, want)
		}
	}
}
