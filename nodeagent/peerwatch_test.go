package nodeagent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/schema/v1alpha1"
)

func managedPeers(name, cluster string, shard, shards int32, node, underlay, addr, mac, cidr string) *v1alpha1.ClusterPeers {
	p := &v1alpha1.ClusterPeers{Spec: v1alpha1.ClusterPeersSpec{Cluster: cluster, Mode: v1alpha1.ModeP2P, Shard: shard, Shards: shards,
		CIDRs: []string{"10.20.0.0/16"},
		Endpoints: []v1alpha1.PeerEndpoint{{Name: node, CIDRs: []string{cidr},
			Tunnels: []v1alpha1.PeerTunnel{{Device: v1alpha1.DeviceBridge, UnderlayIP: underlay, Address: addr, MAC: mac}}}}}}
	p.Name = name
	p.Labels = map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy}
	return p
}

// routesOf is the destinations of the routes Spec derives now; ok is false
// while Spec errs.
func routesOf(s *APISource) (dsts []string, ok bool) {
	spec, err := s.Spec()
	if err != nil {
		return nil, false
	}
	for _, r := range spec.Routes {
		dsts = append(dsts, r.Dst)
	}
	return dsts, true
}

func cached(s *APISource) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.peers.list() {
		out = append(out, p.Name)
	}
	return out
}

// TestWatchPeers runs the agent's ClusterPeers watch against a real API
// server: objects Kosmos manages are listed and followed (created,
// modified, deleted); others are not; a shard deleted while its set is
// incomplete keeps its routes; a cluster whose shards are all gone is
// withdrawn.
func TestWatchPeers(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{Names: []string{"c"}, CRDDirs: []string{filepath.Join("..", "kustomize", "base", "crds")}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := env.Cluster("c").Config
	c := env.ClientsT(t)["c"]

	// One shard exists before the agent starts (listed), one comes after
	// (watched).
	if err := c.Create(ctx, managedPeers("a.0-of-2", "a", 0, 2, "a1", "192.168.2.11", "220.168.2.11", "02:00:00:00:00:a1", "10.20.1.0/24")); err != nil {
		t.Fatal(err)
	}
	nc := &v1alpha1.NodeConfig{Spec: v1alpha1.NodeConfigSpec{Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{{Device: v1alpha1.DeviceBridge}}}}}
	nc.Name = "n1"
	if err := c.Create(ctx, nc); err != nil {
		t.Fatal(err)
	}
	s, err := NewAPISource(cfg, "n1", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go s.Watch(ctx)

	has := func(want ...string) func() bool {
		return func() bool {
			got, ok := routesOf(s)
			return ok && slices.Equal(got, want)
		}
	}
	poll.Until(t, 10*time.Second, "the listed shard's route", has("10.20.1.0/24"))

	if err := c.Create(ctx, managedPeers("a.1-of-2", "a", 1, 2, "a2", "192.168.2.12", "220.168.2.12", "02:00:00:00:00:a2", "10.20.2.0/24")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the watched shard's route", has("10.20.1.0/24", "10.20.2.0/24"))

	// An object Kosmos does not manage is not read.
	foreign := managedPeers("z.0-of-1", "z", 0, 1, "z1", "192.168.9.1", "220.168.9.1", "02:00:00:00:00:09", "10.99.0.0/24")
	foreign.Labels = nil
	if err := c.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}

	// A modification is followed.
	var p v1alpha1.ClusterPeers
	if err := c.Get(ctx, client.ObjectKey{Name: "a.1-of-2"}, &p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Endpoints[0].CIDRs = []string{"10.20.3.0/24"}
	if err := c.Update(ctx, &p); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the modified shard's route", has("10.20.1.0/24", "10.20.3.0/24"))
	if slices.Contains(cached(s), "z.0-of-1") {
		t.Error("an object Kosmos does not manage was read")
	}

	// One shard of the set goes (late, or deleted by hand): the deletion
	// is seen, and the routes it held stay.
	if err := c.Delete(ctx, &p); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the deletion to reach the cache", func() bool { return slices.Equal(cached(s), []string{"a.0-of-2"}) })
	if got, ok := routesOf(s); !ok || !slices.Equal(got, []string{"10.20.1.0/24", "10.20.3.0/24"}) {
		t.Fatalf("a shard missing from its set withdrew routes: %v (ok %v)", got, ok)
	}

	// Every shard gone: the cluster left, its routes go.
	var first v1alpha1.ClusterPeers
	first.Name = "a.0-of-2"
	if err := c.Delete(ctx, &first); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the cluster's routes to go", has())
}

// TestWatchPeersWithoutTheKind: in a cluster without the ClusterPeers kind
// (a reconciler of the earlier release), the cache counts as read, so a
// NodeConfig is applied; once the kind is installed, its objects are read.
func TestWatchPeersWithoutTheKind(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("..", "kustomize", "base", "crds")
	data, err := os.ReadFile(filepath.Join(src, "kosmos.io_nodeconfigs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kosmos.io_nodeconfigs.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	env := testenv.StartT(t, testenv.Options{Names: []string{"c"}, CRDDirs: []string{dir}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := env.Cluster("c").Config
	nc := &v1alpha1.NodeConfig{Spec: v1alpha1.NodeConfigSpec{Peers: &v1alpha1.PeeringSpec{Cluster: "own", Paths: []v1alpha1.PeerPath{{Device: v1alpha1.DeviceBridge}}}}}
	nc.Name = "n1"
	if err := env.ClientsT(t)["c"].Create(ctx, nc); err != nil {
		t.Fatal(err)
	}
	s, err := NewAPISource(cfg, "n1", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go s.Watch(ctx)
	poll.Until(t, 10*time.Second, "the NodeConfig to be composed without the kind", func() bool {
		_, err := s.Spec()
		return err == nil
	})

	// The kind arrives (the reconciler is upgraded), then a shard.
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	crdYAML, err := os.ReadFile(filepath.Join(src, "kosmos.io_clusterpeers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(crdYAML, &crd); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &crd); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "a shard to be created once the kind is served", func() bool {
		err := c.Create(ctx, managedPeers("a.0-of-1", "a", 0, 1, "a1", "192.168.2.11", "220.168.2.11", "02:00:00:00:00:a1", "10.20.1.0/24"))
		return err == nil || errors.Is(err, context.Canceled)
	})
	poll.Until(t, 30*time.Second, "the shard's route once the kind exists", func() bool {
		got, ok := routesOf(s)
		return ok && slices.Equal(got, []string{"10.20.1.0/24"})
	})
}

// TestSpecGoesOnWhenTheAPIServerIsAway: once a NodeConfig was read, an API
// server that cannot be read (a refresh failed) does not stop Spec: it goes
// on composing the NodeConfig read last, so the gateway choice of now still
// reaches the kernel (before, Spec returned the error and Run held the
// config of the old choice until the API server was back). Nothing read
// yet is still an error.
func TestSpecGoesOnWhenTheAPIServerIsAway(t *testing.T) {
	nc := &v1alpha1.NodeConfig{Spec: v1alpha1.NodeConfigSpec{
		Devices: []v1alpha1.Device{{Name: "vx-bridge", VNI: 54, Port: 4876, MAC: "02:00:00:00:00:01", UnderlayIP: "192.168.0.1", NIC: "auto", Addresses: []string{"220.0.0.1/8"}}},
		Routes:  []v1alpha1.Route{{Dst: "10.20.0.0/16", Via: "220.0.0.21", Device: "vx-bridge"}}}}
	nc.Name = "n1"
	away := errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
	s := &APISource{node: "n1", log: slog.New(slog.NewTextHandler(io.Discard, nil)), events: make(chan struct{}, 1)}
	s.set(nil, away)
	if _, err := s.Spec(); !errors.Is(err, away) {
		t.Fatalf("nothing read yet: Spec err %v, want the read error", err)
	}
	s.set(nc, nil)
	s.set(s.currentObject(), away) // the refresh after a broken watch fails
	spec, err := s.Spec()
	if err != nil || len(spec.Routes) != 1 || spec.Routes[0].Via != "220.0.0.21" {
		t.Fatalf("API server away: Spec = %v, %v; want the NodeConfig read last", spec, err)
	}
}
