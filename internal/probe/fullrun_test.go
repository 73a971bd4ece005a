package probe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/internal/probe"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestPodRunnerFullRun: the whole pod-based run against two real API
// servers, this test standing in for the kubelet: it marks the server pods
// Ready at loopback addresses where a real echo server of package probe
// answers (cluster b's pod-network server at 198.51.100.1, where nothing
// does), runs each client pod's `kosmos probe client` arguments with
// package probe's client (real packets) and writes the answers as the
// pod's termination message. The table passes b → a and fails a → b,
// naming exactly those pairs; the pods are gone afterwards.
func TestPodRunnerFullRun(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{Names: []string{"a", "b"}})
	clients := env.ClientsT(t)
	ctx := t.Context()
	for _, c := range clients {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probe.DefaultNamespace}}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv, err := probe.Listen(port)
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	defer srv.Close()
	addr := map[string]string{"a/pod": "127.0.0.11", "a/host": "127.0.1.11", "b/pod": "198.51.100.1", "b/host": "127.0.1.12"}

	topo := &v1alpha1.KosmosTopology{ObjectMeta: metav1.ObjectMeta{Name: "fleet"}}
	topo.Spec.Clusters = []v1alpha1.ClusterSpec{{Name: "a"}, {Name: "b"}}
	r := &probe.PodRunner{Topology: "fleet", Clusters: clients, Image: "img", Port: port, Poll: 100 * time.Millisecond}
	kctx, stopKubelet := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for name, c := range clients {
		wg.Go(func() { fakeKubelet(kctx, t, c, name, r.RunID(), port, addr) })
	}
	start := time.Now()
	rows, err := probe.Run(ctx, topo, r, probe.Options{Timeout: time.Minute, PerProbe: time.Second})
	stopKubelet()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	check.WriteChecks(&out, rows)
	t.Logf("in %s:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	want := map[string]string{
		"probe endpoints": "PASS", "probe a/pod-net → b": "FAIL", "probe a/host-net → b": "FAIL",
		"probe b/pod-net → a": "PASS", "probe b/host-net → a": "PASS", "probe broken pairs": "FAIL",
	}
	for _, row := range rows {
		if want[row.Name] != row.Result {
			t.Errorf("row %q is %s (%s), want %q", row.Name, row.Result, row.Detail, want[row.Name])
		}
		delete(want, row.Name)
	}
	if len(want) > 0 {
		t.Errorf("rows missing: %v", want)
	}
	if last := rows[len(rows)-1]; last.Detail != "a/host-net → b, a/pod-net → b" {
		t.Errorf("broken pairs: %q", last.Detail)
	}
	for name, c := range clients {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(probe.DefaultNamespace)); err != nil || len(pods.Items) > 0 {
			t.Errorf("cluster %s: %d pods left (%v)", name, len(pods.Items), err)
		}
	}
}

// fakeKubelet plays the kubelet of one cluster for the run's pods until
// ctx ends: servers become Ready at addr[cluster/net]; clients run their
// probes with package probe's client and terminate with the answers.
func fakeKubelet(ctx context.Context, t *testing.T, c client.Client, cluster, run string, port int, addr map[string]string) {
	done := map[string]bool{}
	for ctx.Err() == nil {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(probe.DefaultNamespace), client.MatchingLabels{probe.LabelRun: run}); err == nil {
			for i := range pods.Items {
				p := &pods.Items[i]
				if done[p.Name] {
					continue
				}
				now := metav1.Now()
				switch p.Labels[probe.LabelRole] {
				case "server":
					ip := addr[cluster+"/"+p.Labels[probe.LabelNet]]
					p.Status.Phase, p.Status.PodIP, p.Status.PodIPs = corev1.PodRunning, ip, []corev1.PodIP{{IP: ip}}
					p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
				case "client":
					args := p.Spec.Containers[0].Args
					var targets []probe.Target
					for _, a := range args[slices.Index(args, "--per-probe")+2:] {
						tg, err := probe.ParseTarget(a)
						if err != nil {
							t.Errorf("client pod %s: %v", p.Name, err)
							continue
						}
						targets = append(targets, tg)
					}
					var msg strings.Builder
					enc := json.NewEncoder(&msg)
					for _, a := range probe.Client(ctx, targets, port, time.Second) {
						_ = enc.Encode(a)
					}
					p.Status.Phase = corev1.PodSucceeded
					p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "probe", Image: "img", State: corev1.ContainerState{
						Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Message: msg.String(), StartedAt: now, FinishedAt: now}}}}
				}
				if err := c.Status().Update(ctx, p); err == nil {
					done[p.Name] = true
				} else if ctx.Err() == nil {
					t.Logf("status of %s: %v", p.Name, err)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
