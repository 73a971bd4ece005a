package reconciler_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/nodeagent"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// counter counts the requests of a client: reads, writes and the bytes of
// the writes' bodies.
type counter struct {
	rt                   http.RoundTripper
	reads, writes, bytes *atomic.Int64
}

func (c counter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet {
		c.reads.Add(1)
	} else {
		c.writes.Add(1)
		if r.ContentLength > 0 {
			c.bytes.Add(r.ContentLength)
		}
	}
	return c.rt.RoundTrip(r)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkConvergence: 10 clusters on real API servers; one node joins
// cluster c3, and the benchmark measures the time until every node of every
// other cluster derives a route to it (s-to-converge; target ≤ 2 s at
// P2P 10 × 200), the write requests and bytes the reconciler sent for it
// (writes-per-join, bytes-per-join), then one no-op pass (target: reads
// only, zero writes) and its CPU time.
//
// Sizes and modes, in one run: P2P at 10 × 50 twice, first with every agent
// of the earlier contract (legacy: its status says Applied without contract
// Shared, so the reconciler writes complete NodeConfigs, as the earlier
// release did) then with current agents, which gives bytes-per-join as a
// ratio to the earlier contract (legacy-bytes-ratio); then P2P and Gateway
// at 10 × 200.
func BenchmarkConvergence(b *testing.B) {
	const clusters = 10
	var names []string
	for i := range clusters {
		names = append(names, fmt.Sprintf("c%d", i))
	}
	env := testenv.StartT(b, testenv.Options{Names: names})
	scheme, err := reconciler.Scheme()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	clients := map[string]client.Client{}
	for _, n := range names {
		c, err := client.New(env.Cluster(n).Config, client.Options{Scheme: scheme})
		if err != nil {
			b.Fatal(err)
		}
		clients[n] = c
	}
	// grow brings every cluster to n nodes and removes the NodeConfigs and
	// ClusterPeers left by the previous mode (same names, another topology).
	have := 0
	grow := func(n int) {
		for i, name := range names {
			c := clients[name]
			for _, obj := range []client.Object{&v1alpha1.NodeConfig{}, &v1alpha1.ClusterPeers{}} {
				if err := c.DeleteAllOf(ctx, obj); err != nil && !meta.IsNoMatchError(err) {
					b.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			sem := make(chan struct{}, 16)
			for j := have; j < n; j++ {
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					if err := testenv.CreateNode(ctx, c, fmt.Sprintf("n%03d", j), []string{fmt.Sprintf("192.%d.%d.%d", 10+i, j/200, j%200+1)}, []string{fmt.Sprintf("10.%d.%d.0/24", i, j)}, nil); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
		have = n
	}
	legacyBytes := map[int]float64{}
	for k, run := range []struct {
		mode   string
		nodes  int
		legacy bool
	}{{"P2P", 50, true}, {"P2P", 50, false}, {"P2P", 200, false}, {"Gateway", 200, false}} {
		grow(run.nodes)
		name := fmt.Sprintf("%s-%dx%d", run.mode, clusters, run.nodes)
		if run.legacy {
			name += "-legacy-agents"
		}
		b.Run(name, func(b *testing.B) {
			m := convergence(b, env, clients, names, run.mode, run.nodes, run.legacy, k)
			if run.legacy {
				legacyBytes[run.nodes] = m.bytes
			} else if lb := legacyBytes[run.nodes]; lb > 0 {
				b.ReportMetric(m.bytes/lb, "bytes-per-join/legacy")
				fmt.Printf("%s: bytes written per join %.0f vs %.0f with legacy agents (the earlier contract): ratio %.4f\n", name, m.bytes, lb, m.bytes/lb)
			}
		})
	}
}

// joinCost is what one node join cost.
type joinCost struct{ writes, bytes float64 }

// convergence runs the reconciler over the clusters with a topology of mode,
// lets one node join c3 and reports the metrics of BenchmarkConvergence.
// k numbers the run: each joins its own node (the Node objects stay).
func convergence(b *testing.B, env *testenv.Env, clients map[string]client.Client, names []string, mode string, nodes int, legacy bool, k int) joinCost {
	ctx := context.Background()
	topoName := "bench-" + strings.ToLower(mode)
	if legacy {
		topoName += "-legacy"
	}
	var topo strings.Builder
	fmt.Fprintf(&topo, "apiVersion: kosmos.io/v1alpha1\nkind: KosmosTopology\nmetadata: {name: %s}\nspec:\n  clusters:\n", topoName)
	for i, n := range names {
		role := "member"
		if i == 0 {
			role = "host"
		}
		fmt.Fprintf(&topo, "    - {name: %s, role: %s, kubeconfig: {context: %s}, network: {mode: %s, podCIDRs: [10.%d.0.0/16]}}\n", n, role, n, mode, i)
	}
	file := filepath.Join(b.TempDir(), "topology.yaml")
	if err := os.WriteFile(file, []byte(topo.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	if _, err := schema.LoadFile(file); err != nil {
		b.Fatal(err)
	}
	scheme := clients[names[0]].Scheme()
	reads, writes, bytes := &atomic.Int64{}, &atomic.Int64{}, &atomic.Int64{}
	passes := make(chan error, 1000)
	var passEnds []time.Duration
	var passMu sync.Mutex
	var joinStart atomic.Pointer[time.Time]
	ctl := &reconciler.Controller{
		TopologyPath: file,
		Connect: func(t *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
			cs, err := reconciler.ConnectContexts(t, env.KubeconfigPath)
			for i := range cs {
				cfg := rest.CopyConfig(cs[i].Config)
				cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return counter{rt, reads, writes, bytes} })
				cs[i].Config = cfg
				cs[i].Client, _ = client.New(cfg, client.Options{Scheme: scheme})
			}
			return cs, err
		},
		Resync: time.Hour, Prune: true,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		OnPass: func(_ reconciler.Report, err error) {
			if t := joinStart.Load(); t != nil {
				passMu.Lock()
				passEnds = append(passEnds, time.Since(*t).Round(time.Millisecond))
				passMu.Unlock()
			}
			passes <- err
		},
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = ctl.Run(rctx) }()
	defer func() { cancel(); <-done }()
	if err := <-passes; err != nil {
		b.Fatalf("first pass: %v", err)
	}
	if legacy {
		markLegacy(b, clients, names)
		if err := reconciler.Pass(ctx, mustLoad(b, file), connect(b, ctl, file), reconciler.PassOptions{Prune: true}).Err(); err != nil {
			b.Fatal(err)
		}
	}
	join := fmt.Sprintf("join-%d", k)
	joinCIDR := fmt.Sprintf("10.3.%d.0/24", 240+k)
	w := newWatcher(b, clients, names, mode, legacy, join)
	drain(passes)
	writes.Store(0)
	bytes.Store(0)
	start := time.Now()
	joinStart.Store(&start)
	if err := testenv.CreateNode(ctx, clients["c3"], join, []string{fmt.Sprintf("192.13.9.%d", 200+k)}, []string{joinCIDR}, nil); err != nil {
		b.Fatal(err)
	}
	for !w.converged() {
		if time.Since(start) > 5*time.Minute {
			b.Fatal("no convergence within 5 minutes")
		}
		<-time.After(20 * time.Millisecond)
	}
	converge := time.Since(start)
	drain(passes)
	joinStart.Store(nil)
	passMu.Lock()
	fmt.Printf("%s %d×%d: passes after the join ended at %v\n", mode, len(names), nodes, passEnds)
	passMu.Unlock()
	cost := joinCost{float64(writes.Load()), float64(bytes.Load())}
	w.checkRoutes(joinCIDR)
	if mode == "P2P" && !legacy && cost.writes > 2*float64(len(names)) {
		b.Errorf("a node join made %.0f write requests, want ≤ %d", cost.writes, 2*len(names))
	}
	noop(b, ctl, file, reads, writes, bytes, mode, len(names), nodes)
	for b.Loop() {
	}
	b.ReportMetric(float64(len(names)), "clusters")
	b.ReportMetric(float64(nodes), "nodes-per-cluster")
	b.ReportMetric(converge.Seconds(), "s-to-converge")
	b.ReportMetric(cost.writes, "writes-per-join")
	b.ReportMetric(cost.bytes, "bytes-per-join")
	fmt.Printf("%s %d×%d (legacy agents %v): node join converged in %s with %.0f write requests, %.0f bytes\n",
		mode, len(names), nodes, legacy, converge.Round(time.Millisecond), cost.writes, cost.bytes)
	return cost
}

// drain waits until the controller has made no pass for 2 s.
func drain(passes <-chan error) {
	for {
		select {
		case <-passes:
		case <-time.After(2 * time.Second):
			return
		}
	}
}

// markLegacy makes every NodeConfig say its agent is of the earlier
// contract: Applied, without status.contract.
func markLegacy(b *testing.B, clients map[string]client.Client, names []string) {
	ctx := context.Background()
	for _, n := range names {
		var l v1alpha1.NodeConfigList
		if err := clients[n].List(ctx, &l); err != nil {
			b.Fatal(err)
		}
		for i := range l.Items {
			nc := &l.Items[i]
			meta.SetStatusCondition(&nc.Status.Conditions, metav1.Condition{Type: "Applied", Status: metav1.ConditionTrue, Reason: "Applied", ObservedGeneration: nc.Generation})
			if err := clients[n].Status().Update(ctx, nc); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// watcher polls, on metadata only (so that polling does not load the
// machine it measures), for the objects a join changes: in every cluster
// but c3, the NodeConfigs (legacy agents: each lists every remote node) or
// c3's ClusterPeers shards; in c3, the joining node's NodeConfig.
type watcher struct {
	b       *testing.B
	clients map[string]client.Client
	join    string
	kind    string
	before  map[string]map[string]string
	done    map[string]bool
}

func newWatcher(b *testing.B, clients map[string]client.Client, names []string, mode string, legacy bool, join string) *watcher {
	w := &watcher{b: b, clients: clients, join: join, kind: "ClusterPeersList", before: map[string]map[string]string{}, done: map[string]bool{}}
	if legacy {
		w.kind = "NodeConfigList"
	}
	if mode == "P2P" {
		for _, n := range names {
			if n != "c3" {
				w.before[n] = w.versions(n, w.kind)
			}
		}
	}
	return w
}

func (w *watcher) versions(cluster, kind string) map[string]string {
	var l metav1.PartialObjectMetadataList
	l.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(kind))
	if err := w.clients[cluster].List(context.Background(), &l); err != nil {
		w.b.Fatal(err)
	}
	out := map[string]string{}
	for _, it := range l.Items {
		if kind == "NodeConfigList" || strings.HasPrefix(it.Name, "c3.") {
			out[it.Name] = it.ResourceVersion
		}
	}
	return out
}

// converged: the joining node's NodeConfig exists and every watched object
// changed (a shard: the one that names the new node).
func (w *watcher) converged() bool {
	var nc metav1.PartialObjectMetadata
	nc.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(v1alpha1.KindNodeConfig))
	if err := w.clients["c3"].Get(context.Background(), client.ObjectKey{Name: w.join}, &nc); err != nil {
		return false
	}
	for n, old := range w.before {
		if w.done[n] {
			continue
		}
		now := w.versions(n, w.kind)
		changed := 0
		for name, rv := range old {
			if now[name] != rv {
				changed++
			}
		}
		if w.kind == "NodeConfigList" && changed < len(old) || w.kind == "ClusterPeersList" && (changed == 0 || !w.hasJoin(n)) {
			return false
		}
		w.done[n] = true
	}
	return true
}

// hasJoin reads c3's shards in a cluster: one of them names the new node
// (a shard split renames them all).
func (w *watcher) hasJoin(cluster string) bool {
	var l v1alpha1.ClusterPeersList
	if err := w.clients[cluster].List(context.Background(), &l); err != nil {
		w.b.Fatal(err)
	}
	for _, p := range l.Items {
		if p.Spec.Cluster == "c3" && slices.ContainsFunc(p.Spec.Endpoints, func(e v1alpha1.PeerEndpoint) bool { return e.Name == w.join }) {
			return true
		}
	}
	return false
}

// checkRoutes derives, for every node of every other cluster, what its
// agent would hold, and fails unless it routes to the new node.
func (w *watcher) checkRoutes(cidr string) {
	ctx := context.Background()
	for n := range w.before {
		var l v1alpha1.NodeConfigList
		var peers v1alpha1.ClusterPeersList
		if err := w.clients[n].List(ctx, &l); err != nil {
			w.b.Fatal(err)
		}
		if err := w.clients[n].List(ctx, &peers); err != nil {
			w.b.Fatal(err)
		}
		for _, it := range l.Items {
			c, err := nodeagent.Compose(&it, peers.Items)
			if err != nil {
				w.b.Fatal(err)
			}
			if !slices.ContainsFunc(c.Spec.Routes, func(r v1alpha1.Route) bool { return r.Dst == cidr }) {
				w.b.Fatalf("%s/%s derives no route to %s", n, it.Name, cidr)
			}
		}
	}
}

// noop measures one pass of the unchanged topology, with inventories and
// with a label sweep (how prune worked before inventories; the one write is
// the inventory it records), alternated so that drift in the machine's load
// hits both.
func noop(b *testing.B, ctl *reconciler.Controller, file string, reads, writes, bytes *atomic.Int64, mode string, clusters, nodes int) {
	ctx := context.Background()
	type cost struct {
		reads, writes int64
		wall, cpu     time.Duration
	}
	one := func() cost {
		reads.Store(0)
		writes.Store(0)
		runtime.GC()
		cpu0, wall0 := cpuTime(), time.Now()
		st := reconciler.Pass(ctx, mustLoad(b, file), connect(b, ctl, file), reconciler.PassOptions{Prune: true})
		c := cost{reads.Load(), writes.Load(), time.Since(wall0), cpuTime() - cpu0}
		if err := st.Err(); err != nil {
			b.Fatal(err)
		}
		return c
	}
	sweep := func() cost {
		t := mustLoad(b, file)
		inv := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: v1alpha1.SystemNamespace, Name: v1alpha1.InventoryPrefix + t.Name}}
		cs := connect(b, ctl, file)
		if err := cs[0].Client.Delete(ctx, inv); err != nil {
			b.Fatal(err)
		}
		return one()
	}
	inv1, swept, inv2 := one(), sweep(), one()
	with := cost{(inv1.reads + inv2.reads) / 2, (inv1.writes + inv2.writes) / 2, (inv1.wall + inv2.wall) / 2, (inv1.cpu + inv2.cpu) / 2}
	if inv1.writes != 0 || inv2.writes != 0 {
		b.Errorf("a no-op pass wrote: %d and %d write requests", inv1.writes, inv2.writes)
	}
	b.ReportMetric(with.wall.Seconds()/swept.wall.Seconds(), "inventory/sweep-wall")
	b.ReportMetric(with.cpu.Seconds()/swept.cpu.Seconds(), "inventory/sweep-cpu")
	b.ReportMetric(float64(with.reads), "noop-reads")
	b.ReportMetric(float64(with.writes), "noop-writes")
	b.ReportMetric(with.wall.Seconds(), "noop-s")
	b.ReportMetric(with.cpu.Seconds(), "noop-cpu-s")
	fmt.Printf("%s %d×%d: no-op pass with inventories vs label sweep: %d vs %d reads, %d writes, wall %s vs %s (ratio %.2f), CPU %s vs %s (ratio %.2f)\n",
		mode, clusters, nodes, with.reads, swept.reads, with.writes, with.wall.Round(time.Millisecond), swept.wall.Round(time.Millisecond),
		with.wall.Seconds()/swept.wall.Seconds(), with.cpu.Round(time.Millisecond), swept.cpu.Round(time.Millisecond), with.cpu.Seconds()/swept.cpu.Seconds())
}

func mustLoad(b *testing.B, file string) *v1alpha1.KosmosTopology {
	t, err := schema.LoadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func connect(b *testing.B, ctl *reconciler.Controller, file string) []reconciler.Cluster {
	cs, err := ctl.Connect(mustLoad(b, file))
	if err != nil {
		b.Fatal(err)
	}
	return cs
}
