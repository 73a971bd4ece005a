package scheduler_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/scheduler/split"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// BenchmarkSchedulerThroughput: 2,000 pods on 500 nodes (450 real, 50
// virtual: 10 member clusters × 5), with the real kube-scheduler. Pods/s of
// the kosmos profile (pods matched by a policy over the host and the 10
// clusters) as a ratio to the default profile (unmatched pods) in the same
// run; target ≥ 0.9. The final placement must match the policy
// exactly.
func BenchmarkSchedulerThroughput(b *testing.B) {
	const pods, real, clusters, perCluster = 2000, 450, 10, 5
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newWorld(b, ctx)
	lim := newLimiter(32)
	benchNodes(w, lim, real, clusters, perCluster)
	want := benchWant(pods, clusters)
	var def, kos []float64
	var got map[string]int
	for round := range 2 {
		app := fmt.Sprintf("plain%d", round)
		def = append(def, benchRun(b, w, lim, app, "default-scheduler", pods))
		if p, _, _ := w.placement(app); p["host"] != pods {
			b.Errorf("%s: unmatched pods left the host's nodes: %v", app, p)
		}
		benchClear(b, w, app)
		app = fmt.Sprintf("spread%d", round)
		kos = append(kos, benchRun(b, w, lim, app, "kosmos-scheduler", pods))
		if got, _, _ = w.placement(app); fmt.Sprint(got) != fmt.Sprint(want) {
			b.Errorf("placement %v, want %v", got, want)
		}
		benchClear(b, w, app)
	}
	for b.Loop() {
	}
	mean := func(xs []float64) float64 { return (xs[0] + xs[1]) / 2 }
	base, k := mean(def), mean(kos)
	b.ReportMetric(k, "kosmos-pods/s")
	b.ReportMetric(base, "default-pods/s")
	b.ReportMetric(k/base, "ratio")
	fmt.Printf("scheduler, %d pods on %d nodes: kosmos profile %.0f pods/s (runs %.0f, %.0f), default profile %.0f pods/s (runs %.0f, %.0f): ratio %.2f (target ≥ 0.9); placement %v\n",
		pods, real+clusters*perCluster, k, kos[0], kos[1], base, def[0], def[1], k/base, got)
}

// limiter runs at most n functions at once.
type limiter struct {
	wg  sync.WaitGroup
	sem chan struct{}
}

func newLimiter(n int) *limiter { return &limiter{sem: make(chan struct{}, n)} }

func (l *limiter) Go(f func()) {
	l.wg.Go(func() {
		l.sem <- struct{}{}
		defer func() { <-l.sem }()
		f()
	})
}

func (l *limiter) Wait() { l.wg.Wait() }

// benchNodes creates the real nodes, the virtual nodes of the member
// clusters m0..m<clusters-1>, and the two rounds' policies (spread0,
// spread1: the host and every cluster at weight 1).
func benchNodes(w *world, lim *limiter, real, clusters, perCluster int) {
	roomy := []v1alpha1.FreeNode{{CPUMilli: 64000, MemoryBytes: 256 << 30, Pods: 500}}
	for i := range real {
		lim.Go(func() { w.node(fmt.Sprintf("host-n%03d", i), "", "", "64", nil) })
	}
	var targets []v1alpha1.ClusterPlacement
	var domains []v1alpha1.ClusterDomain
	for c := range clusters {
		name := fmt.Sprintf("m%d", c)
		targets = append(targets, v1alpha1.ClusterPlacement{Name: name, Weight: ptr(int32(1))})
		domains = append(domains, v1alpha1.ClusterDomain{Cluster: name})
		for j := range perCluster {
			lim.Go(func() { w.node(fmt.Sprintf("kosmos-%s-%d", name, j), name, "r", "64", roomy) })
		}
	}
	lim.Wait()
	for round := range 2 {
		w.policy(fmt.Sprintf("bench%d", round), map[string]string{"app": fmt.Sprintf("spread%d", round)}, v1alpha1.Placement{IncludeHost: true, Clusters: targets}, domains...)
	}
}

// benchWant is the placement the policies ask for: pods over the clusters
// and the host at 1:1.
func benchWant(pods, clusters int) map[string]int {
	weights := make([]int, clusters+1)
	for i := range weights {
		weights[i] = 1
	}
	want := map[string]int{}
	for i, n := range split.LargestRemainder(pods, weights) {
		if i < clusters {
			want[fmt.Sprintf("m%d", i)] = n
		} else {
			want["host"] = n
		}
	}
	return want
}

// benchRun creates a ReplicaSet of pods and its pods for schedulerName,
// waits until all are bound and returns the pods per second.
func benchRun(b *testing.B, w *world, lim *limiter, app, schedulerName string, pods int) float64 {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: app},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr(int32(pods)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}},
	}
	w.create(rs)
	start := time.Now()
	for i := range pods {
		lim.Go(func() { w.create(w.pod(fmt.Sprintf("%s-%d", app, i), app, "10m", schedulerName, rs)) })
	}
	lim.Wait()
	for {
		var l corev1.PodList
		if err := w.c.List(w.ctx, &l, client.InNamespace("default"), client.MatchingLabels{"app": app}); err != nil {
			b.Fatal(err)
		}
		bound := 0
		for _, p := range l.Items {
			if p.Spec.NodeName != "" {
				bound++
			}
		}
		if bound == pods {
			break
		}
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("%s: %d of %d bound after 5 minutes", app, bound, pods)
		}
		<-time.After(100 * time.Millisecond)
	}
	return float64(pods) / time.Since(start).Seconds()
}

// benchClear deletes a run's pods and waits until they are gone, so every
// run starts from the same, empty, cluster.
func benchClear(b *testing.B, w *world, app string) {
	if err := w.c.DeleteAllOf(w.ctx, &corev1.Pod{}, client.InNamespace("default"), client.MatchingLabels{"app": app}, client.GracePeriodSeconds(0)); err != nil {
		b.Fatal(err)
	}
	for {
		var l corev1.PodList
		if err := w.c.List(w.ctx, &l, client.InNamespace("default"), client.MatchingLabels{"app": app}); err != nil {
			b.Fatal(err)
		}
		if len(l.Items) == 0 {
			return
		}
		<-time.After(100 * time.Millisecond)
	}
}
