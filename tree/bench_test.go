package tree_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"kosmos.io/kosmos/internal/testinfra/benchstat"
	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree"
	"kosmos.io/kosmos/tree/translate"
)

const benchPods = 1000

// parallel runs f(i) for i in [0,n) on k goroutines.
func parallel(n, k int, f func(i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range k {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func heapMB() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

// BenchmarkPodSync: 1,000 pods bound to a virtual node (Aggregate) on real
// control planes. The benchmark plays the member's kubelet: each pod that
// appears in the member is marked Running there. Reported:
//   - pods/s: pods from the first host create to the last host pod showing
//     Running, end to end;
//   - down-p50/p99: host create → pod in the member;
//   - up-p50/p99: Running written in the member → Running on the host pod;
//   - baseline-pods/s: the same writes (host create, member create, bind
//     and Running in the member, Running in the host) done directly with
//     the same parallelism, in the same run; ratio = pods/s over that;
//   - heap-MB: the process's heap growth (GC'd) over the tree's run, until
//     its 1,000 pods are Running;
//   - pass-ms: one pass (Controller.Pass) right after the tree's run, with
//     every pod of the rounds so far in the caches (the tree runs with the
//     shipped 10 s interval between passes; the round's line prints how
//     many pods the host held);
//   - direct-pods/s, direct-down-p99-ms, direct-up-p99-ms: the same flow
//     as bare writes driven by watches (directPipeline), in the same run;
//     ratio-pipeline: pods/s over direct-pods/s; down-p99/direct and
//     up-p99/direct: the tree's p99s over those.
//
// An iteration runs podSyncRounds rounds, each with its own baselines;
// every run has a namespace of its own, and the order of the three runs
// turns each round. Each figure is the median of the rounds (every round
// is printed).
func BenchmarkPodSync(b *testing.B) {
	w := newWorld(b, nil, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member"}, Spec: v1alpha1.ClusterObjectSpec{
		GlobalCIDRs: map[string]string{"10.244.0.0/16": "100.64.0.0/16"}, PodCIDRs: []string{"10.244.0.0/16"}, // the pods' addresses are the member's, as the topology states
		Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate}}})
	ctx := context.Background()
	h, m := w.hostCS, w.members["member"]
	memberNodeObj(ctx, b, m, "m1", "512")
	_, err := h.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
	must(b, err)
	// The shipped pass interval (10 s), not the tests' 200 ms: pods sync
	// through the workers as they change, and the pass (virtual nodes,
	// leases, collecting copies) reads every pod in the caches, so at 5
	// passes a second it would cost the API servers' CPU far more than a
	// deployed tree does. Its cost is measured on its own (pass-ms).
	ctl := w.run(10*time.Second, func(c *tree.Controller) { c.Interval = 0 })
	waitFor(b, "the virtual node", wantReady(ctx, h, "kosmos-member", corev1.ConditionTrue))

	// Only the tree's runs are timed: the timer runs from their first host
	// create until their last host pod is Running, summed over rounds.
	b.ResetTimer()
	b.StopTimer()
	figs := map[string][]float64{} // per metric, one figure per round
	var units []string             // the metrics in the order reported
	report := func(v float64, unit string) {
		if _, ok := figs[unit]; !ok {
			units = append(units, unit)
		}
		figs[unit] = append(figs[unit], v)
	}
	for round := 0; round < b.N*podSyncRounds; round++ {
		// Each run of a round gets a namespace of its own, empty when it
		// starts, and the three take turns going first (what the earlier
		// runs left in the API servers then loads each one alike).
		nsFor := func(run string) string {
			ns := fmt.Sprintf("bench-%d-%s", round, run)
			for _, cs := range []kubernetes.Interface{h, m} {
				_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
				must(b, err)
			}
			_, err := h.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
			must(b, err)
			return ns
		}
		var base float64
		var direct directRun
		others := map[string]func(){
			"base":   func() { base = baseline(ctx, b, h, m, nsFor("base")) },
			"direct": func() { direct = directPipeline(ctx, b, h, m, nsFor("direct")) }, // bench_direct_test.go
		}
		// The order changes each round, through the six orders of the
		// three runs: each run takes each place, after each other one.
		order := podSyncOrders[round%len(podSyncOrders)]
		at := slices.Index(order, "tree")
		for _, name := range order[:at] {
			others[name]()
		}
		ns := nsFor("tree")
		heap0 := heapMB()

		created, inMember, written, running := make([]time.Time, benchPods), make([]time.Time, benchPods), make([]time.Time, benchPods), make([]time.Time, benchPods)
		index := func(name string) int {
			var i int
			if _, err := fmt.Sscanf(name, "p-%d", &i); err != nil || i < 0 || i >= benchPods {
				return -1
			}
			return i
		}
		var mu sync.Mutex
		allRunning := make(chan struct{})
		left := benchPods
		stop := make(chan struct{})
		// The member's kubelet: each new pod of the round runs.
		kubelet := make(chan *corev1.Pod, benchPods)
		watchPods(m, ns, stop, func(p *corev1.Pod, _ bool) {
			if i := index(p.Name); i >= 0 && p.Status.Phase == corev1.PodRunning {
				// Running written in the member: stamped when the member's
				// watch first shows it, as directPipeline does.
				mu.Lock()
				if written[i].IsZero() {
					written[i] = time.Now()
				}
				mu.Unlock()
			}
			if i := index(p.Name); i >= 0 && (p.Status.Phase == "" || p.Status.Phase == corev1.PodPending) {
				mu.Lock()
				first := inMember[i].IsZero()
				if first {
					inMember[i] = time.Now()
				}
				mu.Unlock()
				if first {
					kubelet <- p
				}
			}
		})
		go func() {
			_ = parallel(benchPods, 16, func(int) error {
				return runPod(ctx, m, <-kubelet, "m1", "10.244.0.1")
			})
		}()
		watchPods(h, ns, stop, func(p *corev1.Pod, _ bool) {
			if i := index(p.Name); i >= 0 && p.Status.Phase == corev1.PodRunning {
				mu.Lock()
				if running[i].IsZero() {
					running[i] = time.Now()
					if left--; left == 0 {
						close(allRunning)
					}
				}
				mu.Unlock()
			}
		})

		b.StartTimer()
		start := time.Now()
		must(b, parallel(benchPods, 16, func(i int) error {
			p := hostPod(ns, fmt.Sprintf("p-%d", i), "kosmos-member")
			mu.Lock()
			created[i] = time.Now()
			mu.Unlock()
			_, err := h.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
			return err
		}))
		select {
		case <-allRunning:
		case <-time.After(2 * time.Minute):
			mu.Lock()
			in, wr := 0, 0
			for i := range benchPods {
				in += map[bool]int{true: 1}[!inMember[i].IsZero()]
				wr += map[bool]int{true: 1}[!written[i].IsZero()]
			}
			b.Fatalf("not every host pod showed Running within 2 minutes: %d in the member, %d marked Running there, %d not Running in the host", in, wr, left)
		}
		total := time.Since(start)
		b.StopTimer()
		close(stop)
		heap := heapMB() - heap0
		// One pass with every pod of the rounds so far in the caches, timed
		// just after the controller's own pass (which then waits 10 s), so
		// the two do not overlap.
		for len(w.passes) > 0 {
			<-w.passes
		}
		select {
		case <-w.passes:
		case <-time.After(time.Minute):
			b.Fatal("the controller made no pass within a minute")
		}
		passStart := time.Now()
		if err := ctl.Pass(ctx); err != nil {
			b.Fatalf("pass: %v", err)
		}
		pass := time.Since(passStart)
		hostPods := (round+1)*benchPods + (2*round+at)*benchPods // the tree's runs', and the others' so far
		for _, name := range order[at+1:] {
			others[name]()
		}

		var down, up, lastIn []time.Duration
		for i := range benchPods {
			down = append(down, inMember[i].Sub(created[i]))
			up = append(up, running[i].Sub(written[i]))
			lastIn = append(lastIn, inMember[i].Sub(start))
		}
		rate := benchPods / total.Seconds()
		report(rate, "pods/s")
		report(slices.Max(lastIn).Seconds(), "all-in-member-s")
		report(total.Seconds(), "all-running-s")
		report(float64(pct(down, 0.5).Milliseconds()), "down-p50-ms")
		report(float64(pct(down, 0.99).Milliseconds()), "down-p99-ms")
		report(float64(pct(up, 0.5).Milliseconds()), "up-p50-ms")
		report(float64(pct(up, 0.99).Milliseconds()), "up-p99-ms")
		report(base, "baseline-pods/s")
		report(rate/base, "ratio")
		report(rate/direct.rate, "ratio-pipeline")
		report(heap, "heap-MB")
		report(float64(pass.Milliseconds()), "pass-ms")
		report(direct.rate, "direct-pods/s")
		report(float64(pct(direct.down, 0.99).Milliseconds()), "direct-down-p99-ms")
		report(float64(pct(direct.up, 0.99).Milliseconds()), "direct-up-p99-ms")
		report(pct(down, 0.99).Seconds()/pct(direct.down, 0.99).Seconds(), "down-p99/direct")
		report(pct(up, 0.99).Seconds()/pct(direct.up, 0.99).Seconds(), "up-p99/direct")
		fmt.Printf("pod sync round %d (the tree's run %d of 3): %.2f× the direct writes, %.2f× the bare pipeline, down p99 %v (%.2f× bare), up p99 %v (%.2f× bare)\n", round+1, at+1,
			rate/base, rate/direct.rate, pct(down, 0.99).Round(time.Millisecond), pct(down, 0.99).Seconds()/pct(direct.down, 0.99).Seconds(),
			pct(up, 0.99).Round(time.Millisecond), pct(up, 0.99).Seconds()/pct(direct.up, 0.99).Seconds())
		fmt.Printf("pod sync round %d: one pass took %v with %d pods in the host (%d of them the tree's)\n", round+1,
			pass.Round(time.Millisecond), hostPods, (round+1)*benchPods)
	}
	// Each figure is the median of the rounds: one round of 1,000 pods on
	// shared API servers varies with the machine's load far more than
	// the tree does.
	for _, unit := range units {
		b.ReportMetric(benchstat.Median(figs[unit]), unit)
	}
}

// podSyncRounds is how many rounds of benchPods pods one iteration of
// BenchmarkPodSync runs; its figures are their medians.
const podSyncRounds = 6

// podSyncOrders are the orders of a round's three runs, one per round.
var podSyncOrders = [][]string{
	{"tree", "base", "direct"}, {"base", "direct", "tree"}, {"direct", "tree", "base"},
	{"tree", "direct", "base"}, {"direct", "base", "tree"}, {"base", "tree", "direct"},
}

// baseline does, directly and with the same parallelism, the writes of
// the measured run without the tree's own work: create each pod in the
// host, create it in the member, bind it and mark it Running there (the
// kubelet's part), write Running on the host pod. Returns pods per second.
func baseline(ctx context.Context, b *testing.B, h, m kubernetes.Interface, ns string) float64 {
	start := time.Now()
	hostPods := make([]*corev1.Pod, benchPods)
	must(b, parallel(benchPods, 16, func(i int) error {
		var err error
		hostPods[i], err = h.CoreV1().Pods(ns).Create(ctx, hostPod(ns, fmt.Sprintf("base-%d", i), "no-such-node"), metav1.CreateOptions{})
		return err
	}))
	hostCreate := time.Since(start)
	start = time.Now()
	must(b, parallel(benchPods, 16, func(i int) error {
		p, err := translate.MemberPod(hostPods[i], baselineCopy)
		if err != nil {
			return err
		}
		disguise(p) // bench_direct_test.go
		if p, err = m.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return err
		}
		if err := runPod(ctx, m, p, "m1", "10.244.0.2"); err != nil { // the kubelet's part, as in the measured run
			return err
		}
		p = hostPods[i].DeepCopy()
		p.Status.Phase = corev1.PodRunning
		_, err = h.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	}))
	// The host creates are the benchmark's own input in both runs: count them too.
	return benchPods / (hostCreate + time.Since(start)).Seconds()
}

// watchPods calls f for every pod event in namespace ns until stop closes.
func watchPods(cs kubernetes.Interface, ns string, stop <-chan struct{}, f func(p *corev1.Pod, deleted bool)) {
	inf := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns), informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.Everything().String()
	})).Core().V1().Pods().Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { f(o.(*corev1.Pod), false) },
		UpdateFunc: func(_, o any) { f(o.(*corev1.Pod), false) },
	})
	go inf.Run(stop)
	cache.WaitForCacheSync(stop, inf.HasSynced)
}
