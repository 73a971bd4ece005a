package tree_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kosmos.io/kosmos/tree/translate"
)

// directRun is what the direct pipeline measured: pods per second end to
// end, and per pod the down (host create → pod in the member) and up
// (Running written in the member → Running on the host pod) latencies.
type directRun struct {
	rate     float64
	down, up []time.Duration
}

// directPipeline is the latency baseline of BenchmarkPodSync: the same
// flow with the same parallelism as the measured run, but each step a bare
// write made the moment a watch shows its cause, without the tree: host
// creates (16 at a time); watches of the host and the member hand each new
// host pod and each member pod that runs to 16 workers (the tree's
// Workers in the benchmark), which create the pod in the member or write
// Running on the host pod; the member's kubelet (16 workers, as in the
// measured run) marks member pods Running. What
// it measures is what the API servers and watches cost on this machine
// under this load; the tree's figures over these are its own cost. The
// host pods are bound to a node that is no virtual node, so the tree,
// running meanwhile, leaves them alone.
func directPipeline(ctx context.Context, b *testing.B, h, m kubernetes.Interface, ns string) directRun {
	b.Helper()
	index := func(name string) int {
		var i int
		if _, err := fmt.Sscanf(name, "d-%d", &i); err != nil || i < 0 || i >= benchPods {
			return -1
		}
		return i
	}
	created, inMember, written, running := make([]time.Time, benchPods), make([]time.Time, benchPods), make([]time.Time, benchPods), make([]time.Time, benchPods)
	hostPods := make([]*corev1.Pod, benchPods)
	var mu sync.Mutex
	left := benchPods
	allRunning := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	toCopy, toRun, toReport := make(chan *corev1.Pod, benchPods), make(chan *corev1.Pod, benchPods), make(chan int, benchPods)
	// first reports whether t[i] was unset, and sets it.
	first := func(t []time.Time, i int) bool {
		mu.Lock()
		defer mu.Unlock()
		if !t[i].IsZero() {
			return false
		}
		t[i] = time.Now()
		return true
	}
	reported := make([]bool, benchPods)
	watchPods(h, ns, stop, func(p *corev1.Pod, _ bool) {
		i := index(p.Name)
		if i < 0 {
			return
		}
		mu.Lock()
		seen := hostPods[i] != nil
		if !seen {
			hostPods[i] = p
		}
		mu.Unlock()
		if !seen {
			toCopy <- p
		}
		if p.Status.Phase == corev1.PodRunning && first(running, i) {
			mu.Lock()
			if left--; left == 0 {
				close(allRunning)
			}
			mu.Unlock()
		}
	})
	watchPods(m, ns, stop, func(p *corev1.Pod, _ bool) {
		i := index(p.Name)
		if i < 0 {
			return
		}
		switch {
		case p.Status.Phase == "" || p.Status.Phase == corev1.PodPending:
			if first(inMember, i) {
				toRun <- p
			}
		case p.Status.Phase == corev1.PodRunning:
			first(written, i) // as BenchmarkPodSync stamps it: the member's watch shows Running
			mu.Lock()
			again := reported[i]
			reported[i] = true
			mu.Unlock()
			if !again {
				toReport <- i
			}
		}
	})
	work := func(f func() error) {
		for range 16 {
			go func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := f(); err != nil && ctx.Err() == nil {
						b.Errorf("direct pipeline: %v", err)
						return
					}
				}
			}()
		}
	}
	work(func() error { // the tree's part, 16 workers as its Workers
		select {
		case hp := <-toCopy:
			p, err := translate.MemberPod(hp, baselineCopy)
			if err != nil {
				return err
			}
			disguise(p)
			_, err = m.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
			return err
		case i := <-toReport:
			mu.Lock()
			p := hostPods[i].DeepCopy()
			mu.Unlock()
			p.Status.Phase = corev1.PodRunning
			_, err := h.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return err
		case <-stop:
			return nil
		}
	})
	work(func() error { // the member's kubelet
		select {
		case p := <-toRun:
			return runPod(ctx, m, p, "m1", "10.244.0.3")
		case <-stop:
			return nil
		}
	})

	start := time.Now()
	must(b, parallel(benchPods, 16, func(i int) error {
		first(created, i)
		_, err := h.CoreV1().Pods(ns).Create(ctx, hostPod(ns, fmt.Sprintf("d-%d", i), "no-such-node"), metav1.CreateOptions{})
		return err
	}))
	select {
	case <-allRunning:
	case <-time.After(2 * time.Minute):
		mu.Lock()
		defer mu.Unlock()
		b.Fatalf("direct pipeline: %d host pods not Running within 2 minutes", left)
	}
	total := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	r := directRun{rate: benchPods / total.Seconds()}
	for i := range benchPods {
		r.down = append(r.down, inMember[i].Sub(created[i]))
		r.up = append(r.up, running[i].Sub(written[i]))
	}
	return r
}

// baselineCopy translates the baselines' copies as the tree does in the
// benchmark: the same virtual node's name, an owner of the same length.
var baselineCopy = translate.PodOptions{VirtualNode: "kosmos-member", Owner: translate.OwnerID("bench", "member")}

// disguise renames the tree's marks on a copy a baseline makes
// (kosmos.io/… to benchx.io/…, as long): the baseline writes as many bytes
// as the tree does, and the copy is not the tree's, which leaves it alone.
func disguise(p *corev1.Pod) {
	rename := func(m map[string]string) map[string]string {
		out := make(map[string]string, len(m))
		for k, v := range m {
			if rest, ok := strings.CutPrefix(k, "kosmos.io/"); ok {
				k = "benchx.io/" + rest
			}
			out[k] = v
		}
		return out
	}
	p.Labels, p.Annotations = rename(p.Labels), rename(p.Annotations)
}
