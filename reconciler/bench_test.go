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
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

type counter struct {
	rt            http.RoundTripper
	reads, writes *atomic.Int64
}

func (c counter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet {
		c.reads.Add(1)
	} else {
		c.writes.Add(1)
	}
	return c.rt.RoundTrip(r)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkConvergence: 10 clusters on real API servers, 50 Node objects
// each in P2P mode, then 200 each in Gateway mode. One node joins: the time
// until every affected NodeConfig routes to it (target ≤ 2 s). Then a no-op
// pass: its API requests (target: reads only, zero writes) and the CPU time
// it costs.
//
// P2P is measured at 50 nodes per cluster because its NodeConfigs grow with
// the whole fleet (every node lists every remote node's route, FDB entry and
// neighbour): at 200 nodes × 10 clusters that is 2,000 objects of ~5,400
// entries each, more than ten API servers on one 2-core machine can store
// in time. Gateway mode is the one meant for large fleets.
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
	// grow brings every cluster to n nodes and removes NodeConfigs left by
	// the previous mode (same names, another topology).
	have := 0
	grow := func(n int) {
		for i, name := range names {
			c := clients[name]
			if err := c.DeleteAllOf(ctx, &v1alpha1.NodeConfig{}); err != nil && !meta.IsNoMatchError(err) {
				b.Fatal(err)
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
	for _, mode := range []struct {
		name  string
		nodes int
	}{{"P2P", 50}, {"Gateway", 200}} {
		grow(mode.nodes)
		nodes := mode.nodes
		b.Run(mode.name, func(b *testing.B) {
			mode := mode.name
			var topo strings.Builder
			fmt.Fprintf(&topo, "apiVersion: kosmos.io/v1alpha1\nkind: KosmosTopology\nmetadata: {name: bench-%s}\nspec:\n  clusters:\n", strings.ToLower(mode))
			for i, n := range names {
				role := "member"
				if i == 0 {
					role = "host"
				}
				fmt.Fprintf(&topo, "    - {name: %s, role: %s, kubeconfig: {context: %s}, network: {mode: %s, podCIDRs: [10.%d.0.0/16]}}\n", n, role, n, mode, i)
			}
			dir := b.TempDir()
			file := filepath.Join(dir, "topology.yaml")
			if err := os.WriteFile(file, []byte(topo.String()), 0o644); err != nil {
				b.Fatal(err)
			}
			if _, err := schema.LoadFile(file); err != nil {
				b.Fatal(err)
			}
			reads, writes := &atomic.Int64{}, &atomic.Int64{}
			passes := make(chan error, 1000)
			ctl := &reconciler.Controller{
				TopologyPath: file,
				Connect: func(t *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
					cs, err := reconciler.ConnectContexts(t, env.KubeconfigPath)
					for i := range cs {
						cfg := rest.CopyConfig(cs[i].Config)
						cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return counter{rt, reads, writes} })
						cs[i].Config = cfg
						cs[i].Client, _ = client.New(cfg, client.Options{Scheme: scheme})
					}
					return cs, err
				},
				Resync: time.Hour, Prune: true,
				Log:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
				OnPass: func(_ reconciler.Report, err error) { passes <- err },
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); _ = ctl.Run(rctx) }()
			defer func() { cancel(); <-done }()
			if err := <-passes; err != nil {
				b.Fatalf("first pass: %v", err)
			}

			// Affected: in P2P every node of the other clusters routes to the
			// new node; in Gateway mode nothing outside c3 changes (peers
			// route c3's whole range to its gateway), only the new node's own
			// config appears. Progress is polled on metadata only, so the
			// polling does not load the machine it measures.
			versions := func(n string) map[string]string {
				var l metav1.PartialObjectMetadataList
				l.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("NodeConfigList"))
				if err := clients[n].List(ctx, &l); err != nil {
					b.Fatal(err)
				}
				out := map[string]string{}
				for _, it := range l.Items {
					out[it.Name] = it.ResourceVersion
				}
				return out
			}
			before := map[string]map[string]string{}
			if mode == "P2P" {
				for _, n := range names {
					if n != "c3" {
						before[n] = versions(n)
					}
				}
			}
			join := fmt.Sprintf("join-%s", strings.ToLower(mode))
			joinIP, joinCIDR := fmt.Sprintf("192.13.9.%d", nodes), fmt.Sprintf("10.3.%d.0/24", nodes+50)
			start := time.Now()
			if err := testenv.CreateNode(ctx, clients["c3"], join, []string{joinIP}, []string{joinCIDR}, nil); err != nil {
				b.Fatal(err)
			}
			affected := func() bool {
				if _, ok := versions("c3")[join]; !ok {
					return false
				}
				for n, old := range before {
					now := versions(n)
					for name, rv := range old {
						if now[name] == rv {
							return false
						}
					}
				}
				return true
			}
			for !affected() {
				if time.Since(start) > 5*time.Minute {
					b.Fatal("no convergence within 5 minutes")
				}
				<-time.After(20 * time.Millisecond)
			}
			// The changed objects do route to the new node.
			for n := range before {
				var l v1alpha1.NodeConfigList
				if err := clients[n].List(ctx, &l); err != nil {
					b.Fatal(err)
				}
				for _, it := range l.Items {
					if !slices.ContainsFunc(it.Spec.Routes, func(r v1alpha1.Route) bool { return r.Dst == joinCIDR }) {
						b.Fatalf("%s/%s changed but has no route to %s", n, it.Name, joinCIDR)
					}
				}
			}
			converge := time.Since(start)
			// Drain the passes the join caused, then measure one no-op pass.
			for drained := false; !drained; {
				select {
				case <-passes:
				case <-time.After(2 * time.Second):
					drained = true
				}
			}
			type cost struct {
				reads, writes int64
				wall, cpu     time.Duration
			}
			// noop measures one pass of the unchanged topology.
			noop := func() cost {
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
			// sweep measures the same pass without an inventory: what Kosmos
			// owns is found by a label sweep over every kind it writes, in
			// every cluster (how prune worked before inventories; a pass
			// still does it once for a cluster without a record). The one
			// write is the inventory it records.
			sweep := func() cost {
				inv := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: v1alpha1.SystemNamespace, Name: v1alpha1.InventoryPrefix + "bench-" + strings.ToLower(mode)}}
				if err := clients["c0"].Delete(ctx, inv); err != nil {
					b.Fatal(err)
				}
				return noop()
			}
			// Alternated, so drift in the machine's load hits both sides.
			inv1, swept, inv2 := noop(), sweep(), noop()
			withInv := cost{(inv1.reads + inv2.reads) / 2, (inv1.writes + inv2.writes) / 2, (inv1.wall + inv2.wall) / 2, (inv1.cpu + inv2.cpu) / 2}
			for b.Loop() {
			}
			noopWall, noopCPU := withInv.wall, withInv.cpu
			reads.Store(withInv.reads)
			writes.Store(withInv.writes)
			b.ReportMetric(withInv.wall.Seconds()/swept.wall.Seconds(), "inventory/sweep-wall")
			b.ReportMetric(withInv.cpu.Seconds()/swept.cpu.Seconds(), "inventory/sweep-cpu")
			fmt.Printf("%s %d×%d: no-op pass with inventories vs label sweep: %d vs %d reads, wall %s vs %s (ratio %.2f), CPU %s vs %s (ratio %.2f)\n",
				mode, clusters, nodes, withInv.reads, swept.reads, withInv.wall.Round(time.Millisecond), swept.wall.Round(time.Millisecond),
				withInv.wall.Seconds()/swept.wall.Seconds(), withInv.cpu.Round(time.Millisecond), swept.cpu.Round(time.Millisecond), withInv.cpu.Seconds()/swept.cpu.Seconds())
			b.ReportMetric(converge.Seconds(), "s-to-converge")
			b.ReportMetric(float64(reads.Load()), "noop-reads")
			b.ReportMetric(float64(writes.Load()), "noop-writes")
			b.ReportMetric(noopWall.Seconds(), "noop-s")
			b.ReportMetric(noopCPU.Seconds(), "noop-cpu-s")
			fmt.Printf("%s %d×%d: node join converged in %s; no-op pass: %d reads, %d writes, %s wall, %s CPU\n",
				mode, clusters, nodes, converge.Round(time.Millisecond), reads.Load(), writes.Load(), noopWall.Round(time.Millisecond), noopCPU.Round(time.Millisecond))
		})
	}
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
