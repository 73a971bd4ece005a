package reconciler_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema"
)

// BenchmarkBlockChurn: 10 Calico clusters (network.ipam Auto) on real API
// servers, 200 nodes each with 4 confirmed /26 blocks and no
// spec.podCIDRs. Calico adds a block to a node of c3: the write requests
// and the wall time of the pass that follows (the reconciler's reaction),
// as ratios to a node join (a new node with its 4 blocks) measured in the
// same run, alternated three times each so that drift in the machine's
// load hits both. Target: a block costs no more writes than a join (one
// ClusterPeers shard in each other cluster, no NodeConfig).
func BenchmarkBlockChurn(b *testing.B) {
	const clusters, nodes, blocks = 10, 200, 4
	var names []string
	for i := range clusters {
		names = append(names, fmt.Sprintf("c%d", i))
	}
	env := testenv.StartT(b, testenv.Options{Names: names})
	clients := env.ClientsT(b)
	ctx := context.Background()
	var topo strings.Builder
	topo.WriteString("apiVersion: kosmos.io/v1alpha1\nkind: KosmosTopology\nmetadata: {name: churn}\nspec:\n  clusters:\n")
	for i, n := range names {
		role := "member"
		if i == 0 {
			role = "host"
		}
		fmt.Fprintf(&topo, "    - {name: %s, role: %s, kubeconfig: {context: %s}, network: {podCIDRs: [10.%d.0.0/16]}}\n", n, role, n, i)
	}
	file := filepath.Join(b.TempDir(), "topology.yaml")
	if err := os.WriteFile(file, []byte(topo.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	t, err := schema.LoadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	// addNode creates node j of cluster i with its blocks (block k of node
	// j is 10.i.j.(64k)/26).
	addNode := func(i, j int, c client.Client) error {
		if err := testenv.CreateNode(ctx, c, fmt.Sprintf("n%03d", j), []string{fmt.Sprintf("192.%d.%d.%d", 10+i, j/200, j%200+1)}, nil, nil); err != nil {
			return err
		}
		for k := range blocks {
			if err := c.Create(ctx, calicoBlock(fmt.Sprintf("n%03d", j), fmt.Sprintf("10.%d.%d.%d/26", i, j, 64*k), "confirmed")); err != nil {
				return err
			}
		}
		return nil
	}
	start := time.Now()
	for i, n := range names {
		if _, err := envtest.InstallCRDs(env.Cluster(n).Config, envtest.CRDInstallOptions{Paths: []string{filepath.Join("testdata", "cni-crds")}}); err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for j := range nodes {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				if err := addNode(i, j, clients[n]); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	b.Logf("%d×%d nodes with %d blocks each created in %s", clusters, nodes, blocks, time.Since(start).Round(time.Second))

	reads, writes, bytes := &atomic.Int64{}, &atomic.Int64{}, &atomic.Int64{}
	scheme := clients[names[0]].Scheme()
	pass := func() (int64, time.Duration) {
		b.Helper()
		cs, err := reconciler.ConnectContexts(t, env.KubeconfigPath)
		if err != nil {
			b.Fatal(err)
		}
		for i := range cs {
			cfg := rest.CopyConfig(cs[i].Config)
			cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return counter{rt, reads, writes, bytes} })
			cs[i].Config = cfg
			cs[i].Client, _ = client.New(cfg, client.Options{Scheme: scheme})
		}
		writes.Store(0)
		t0 := time.Now()
		rep := reconciler.Pass(ctx, t, cs, reconciler.PassOptions{Prune: true})
		d := time.Since(t0)
		if err := rep.Err(); err != nil {
			b.Fatal(err)
		}
		return writes.Load(), d
	}
	w0, d0 := pass()
	b.Logf("first pass: %d writes in %s", w0, d0.Round(time.Millisecond))
	if w, _ := pass(); w != 0 {
		b.Errorf("a no-op pass wrote %d requests", w)
	}
	var joinW, blockW int64
	var joinT, blockT time.Duration
	const rounds = 3
	for r := range rounds {
		if err := addNode(3, nodes+r, clients["c3"]); err != nil {
			b.Fatal(err)
		}
		w, d := pass()
		joinW, joinT = joinW+w, joinT+d
		blk := calicoBlock(fmt.Sprintf("n%03d", 5+r), fmt.Sprintf("10.3.%d.0/26", 240+r), "confirmed")
		if err := clients["c3"].Create(ctx, blk); err != nil {
			b.Fatal(err)
		}
		w2, d2 := pass()
		blockW, blockT = blockW+w2, blockT+d2
		b.Logf("round %d: join %d writes in %s; new block %d writes in %s", r, w, d.Round(time.Millisecond), w2, d2.Round(time.Millisecond))
		if w2 > int64(clusters-1)+1 { // a shard in each other cluster, the facts record
			b.Errorf("a new block made %d write requests, want ≤ %d", w2, clusters)
		}
	}
	for b.Loop() {
	}
	wr := float64(blockW) / float64(joinW)
	tr := blockT.Seconds() / joinT.Seconds()
	b.ReportMetric(float64(blockW)/rounds, "writes-per-block")
	b.ReportMetric(float64(joinW)/rounds, "writes-per-join")
	b.ReportMetric(wr, "block/join-writes")
	b.ReportMetric(tr, "block/join-wall")
	fmt.Printf("block churn %d×%d×%d: a new block %.1f writes, %s per pass; a node join %.1f writes, %s per pass; ratios writes %.2f, wall %.2f\n",
		clusters, nodes, blocks, float64(blockW)/rounds, (blockT / rounds).Round(time.Millisecond), float64(joinW)/rounds, (joinT / rounds).Round(time.Millisecond), wr, tr)
}
