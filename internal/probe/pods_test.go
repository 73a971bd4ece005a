package probe_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/internal/probe"
	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestPodRunnerCreatesAndCleansUp: against two real API servers (no
// kubelet runs the pods: the objects are the proof), kosmos check --probe
// creates in each cluster's probe namespace a server pod on the pod network
// and one on the host network, Kosmos-owned, with the Kosmos image running
// `kosmos probe serve`, bounded in time and least-privileged; cancelling the
// run (Ctrl-C) deletes them all, and nothing else in the namespace. The
// runner acts as a user who holds only kustomize/base/probe's Role.
func TestPodRunnerCreatesAndCleansUp(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{Names: []string{"a", "b"}})
	clients := env.ClientsT(t)
	ctx := t.Context()
	// The identity that runs the check holds only kustomize/base/probe's
	// Role, bound as rolebinding.example.yaml binds it.
	prober := map[string]client.Client{}
	for name, c := range clients {
		applyManifests(t, c, "namespace.yaml", "rbac.yaml", "rolebinding.example.yaml")
		cfg := rest.CopyConfig(env.Cluster(name).Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "alice", Groups: []string{"fleet-operators", "system:authenticated"}}
		pc, err := client.New(cfg, client.Options{Scheme: c.Scheme()})
		if err != nil {
			t.Fatal(err)
		}
		prober[name] = pc
		// Someone else's pod in the namespace stays.
		other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "not-ours", Namespace: probe.DefaultNamespace, Labels: map[string]string{probe.LabelRun: "x"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if err := c.Create(ctx, other); err != nil {
			t.Fatalf("cluster %s: %v", name, err)
		}
	}
	topo := &v1alpha1.KosmosTopology{ObjectMeta: metav1.ObjectMeta{Name: "fleet"}}
	topo.Spec.Clusters = []v1alpha1.ClusterSpec{{Name: "a"}, {Name: "b"}}
	r := &probe.PodRunner{Topology: "fleet", Clusters: prober, Image: "registry.example/kosmos:v1", Port: 4999, Deadline: 3 * time.Minute, Poll: 100 * time.Millisecond}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := probe.Run(runCtx, topo, r, probe.Options{Timeout: 2 * time.Minute})
		done <- err
	}()
	ours := client.MatchingLabels{probe.LabelRun: r.RunID()}
	list := func(c client.Client, sel client.MatchingLabels) []corev1.Pod {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(probe.DefaultNamespace), sel); err != nil {
			t.Fatal(err)
		}
		return pods.Items
	}
	for name, c := range clients {
		poll.Until(t, 30*time.Second, "two probe server pods in cluster "+name, func() bool { return len(list(c, ours)) == 2 })
		nets := map[string]bool{}
		for _, p := range list(c, ours) {
			nets[p.Labels[probe.LabelNet]] = true
			if err := checkServerPod(p, r.RunID()); err != nil {
				t.Errorf("cluster %s: %v", name, err)
			}
		}
		if !nets["pod"] || !nets["host"] {
			t.Errorf("cluster %s: probe pods on networks %v, want pod and host", name, nets)
		}
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not end within a minute of the cancel")
	}
	t.Logf("Run ended and cleaned up %s after the cancel", time.Since(start).Round(time.Millisecond))
	for name, c := range clients {
		if left := list(c, ours); len(left) > 0 {
			t.Errorf("cluster %s: %d probe pods left after the cancel, first %s", name, len(left), left[0].Name)
		}
		if len(list(c, client.MatchingLabels{probe.LabelRun: "x"})) != 1 {
			t.Errorf("cluster %s: the pod Kosmos did not create is gone", name)
		}
	}

	// Without the MCS CRDs, the services are not probed, a row says why, and
	// nothing of them is left.
	noMCS := &probe.PodRunner{Topology: "fleet", Clusters: prober, Image: "registry.example/kosmos:v1"}
	eps := []probe.Endpoint{{Cluster: "a", Net: probe.PodNet}, {Cluster: "b", Net: probe.PodNet}}
	vips, without, err := noMCS.ExportServices(ctx, eps)
	if err != nil || len(vips) > 0 || strings.Join(without, ",") != "a,b" {
		t.Errorf("services without the MCS CRDs: VIPs %v, no MCS in %v, %v: want no VIPs, both clusters named, no error", vips, without, err)
	}
	if row := probe.ServicesRow(vips, without, err); row.Result != "SKIP" || !strings.Contains(row.Detail, "no MCS API (ServiceExport) in a, b") {
		t.Errorf("services row without the MCS CRDs: %+v", row)
	}
	if err := noMCS.Close(ctx); err != nil {
		t.Error(err)
	}
	for name, c := range clients {
		var svcs corev1.ServiceList
		if err := c.List(ctx, &svcs, client.InNamespace(probe.DefaultNamespace)); err != nil || len(svcs.Items) > 0 {
			t.Errorf("cluster %s: %d probe Services left without the MCS CRDs (%v)", name, len(svcs.Items), err)
		}
	}

	// Without the namespace, the table says what to apply.
	missing := &probe.PodRunner{Topology: "fleet", Clusters: clients, Namespace: "no-such-ns", Image: "registry.example/kosmos:v1"}
	rows, err := probe.Run(ctx, topo, missing, probe.Options{Timeout: 20 * time.Second})
	if err != nil || len(rows) == 0 || rows[0].Result != "FAIL" || !strings.Contains(rows[0].Detail, "apply kustomize/base/probe") {
		t.Errorf("a run without the probe namespace: %v %+v, want a FAIL row that says to apply kustomize/base/probe", err, rows)
	}
}

// applyManifests creates the objects of kustomize/base/probe's files.
func applyManifests(t *testing.T, c client.Client, files ...string) {
	t.Helper()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join("..", "..", "kustomize", "base", "probe", f))
		if err != nil {
			t.Fatal(err)
		}
		var u unstructured.Unstructured
		if err := yaml.Unmarshal(data, &u.Object); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := c.Create(t.Context(), &u); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

// checkServerPod says what is wrong with a probe server pod of run.
func checkServerPod(p corev1.Pod, run string) error {
	l := p.Labels
	if l[v1alpha1.LabelManagedBy] != v1alpha1.ManagedBy || l[v1alpha1.LabelTopology] != "fleet" || l[probe.LabelRun] != run || l[probe.LabelRole] != "server" {
		return fmt.Errorf("pod %s: labels %v", p.Name, l)
	}
	s := p.Spec
	if s.HostNetwork != (l[probe.LabelNet] == "host") {
		return fmt.Errorf("pod %s on the %s network has hostNetwork %v", p.Name, l[probe.LabelNet], s.HostNetwork)
	}
	if len(s.Containers) != 1 {
		return fmt.Errorf("pod %s: %d containers", p.Name, len(s.Containers))
	}
	c := s.Containers[0]
	if c.Image != "registry.example/kosmos:v1" || fmt.Sprint(c.Args) != "[probe serve --port 4999]" {
		return fmt.Errorf("pod %s runs %s %v, want the Kosmos image running probe serve --port 4999", p.Name, c.Image, c.Args)
	}
	if s.RestartPolicy != corev1.RestartPolicyNever || s.ActiveDeadlineSeconds == nil || *s.ActiveDeadlineSeconds != 180 {
		return fmt.Errorf("pod %s: restartPolicy %s, activeDeadlineSeconds %v: want Never and 180", p.Name, s.RestartPolicy, s.ActiveDeadlineSeconds)
	}
	if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
		return fmt.Errorf("pod %s mounts a service account token", p.Name)
	}
	sc := c.SecurityContext
	if s.SecurityContext == nil || s.SecurityContext.RunAsNonRoot == nil || !*s.SecurityContext.RunAsNonRoot ||
		sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || fmt.Sprint(sc.Capabilities.Drop) != "[ALL]" {
		return fmt.Errorf("pod %s is not least-privileged: %+v %+v", p.Name, s.SecurityContext, sc)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.TCPSocket == nil || c.ReadinessProbe.TCPSocket.Port.IntValue() != 4999 {
		return fmt.Errorf("pod %s has no readiness probe on its echo port", p.Name)
	}
	return nil
}
