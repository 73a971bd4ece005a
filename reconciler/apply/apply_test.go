package apply_test

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/reconciler/apply"
	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/reconciler/inventory"
	"kosmos.io/kosmos/reconciler/netplan"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// writeCounter counts the requests that are not reads.
type writeCounter struct {
	rt     http.RoundTripper
	writes *atomic.Int64
}

func (w writeCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet {
		w.writes.Add(1)
	}
	return w.rt.RoundTrip(r)
}

type cluster struct {
	name   string
	c      client.Client
	writes *atomic.Int64
}

func newScheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, corev1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// observe reads the facts of every cluster (real reads, no writes).
func observe(ctx context.Context, t *testing.T, cs []cluster) netplan.Facts {
	t.Helper()
	facts := netplan.Facts{}
	for _, cl := range cs {
		var nodes corev1.NodeList
		var ncs v1alpha1.NodeConfigList
		if err := cl.c.List(ctx, &nodes); err != nil {
			t.Fatal(err)
		}
		if err := cl.c.List(ctx, &ncs); err != nil {
			t.Fatal(err)
		}
		facts[cl.name] = desired.FactsOf(nodes.Items, ncs.Items)
	}
	return facts
}

// applyAll applies the plan of every cluster, pruning by the inventories in
// inv (which it updates as apply.Cluster returns them).
func applyAll(ctx context.Context, t *testing.T, cs []cluster, topo *v1alpha1.KosmosTopology, facts netplan.Facts, inv map[string][]inventory.Entry) map[string]apply.Result {
	t.Helper()
	st := desired.Compute(topo, facts)
	if len(st.Problems) > 0 {
		t.Fatalf("plan problems: %v", st.Problems)
	}
	out := map[string]apply.Result{}
	for i, co := range st.Clusters {
		res, next, err := apply.Cluster(ctx, cs[i].c, co.Objects, apply.Options{Inventory: inv[co.Cluster], Prune: true})
		if err != nil {
			t.Fatalf("apply in %s: %v", co.Cluster, err)
		}
		inv[co.Cluster] = next
		out[co.Cluster] = res
	}
	return out
}

// TestApplyExampleTopology applies the example to four real clusters: the
// planned objects exist, a second pass makes zero write requests, drift on a
// managed object is reverted, a NodeConfig of a departed node is pruned and
// an unowned object is left alone.
func TestApplyExampleTopology(t *testing.T) {
	names := []string{"host", "member-a", "member-b", "member-c"}
	env := testenv.StartT(t, testenv.Options{Names: names})
	ctx := context.Background()
	topo, err := schema.LoadFile(filepath.Join("..", "..", "topology.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	scheme := newScheme(t)
	var cs []cluster
	clients := map[string]client.Client{}
	for _, name := range names {
		cfg := rest.CopyConfig(env.Cluster(name).Config)
		if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: []string{filepath.Join("..", "..", "kustomize", "base", "crds")}, ErrorIfPathMissing: true}); err != nil {
			t.Fatal(err)
		}
		writes := &atomic.Int64{}
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return writeCounter{rt: rt, writes: writes} })
		c, err := client.New(cfg, client.Options{Scheme: scheme})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, cluster{name: name, c: c, writes: writes})
		clients[name] = c
	}
	if err := testenv.ExampleNodes(ctx, clients); err != nil {
		t.Fatal(err)
	}
	// An object Kosmos did not create, of a kind it prunes.
	unowned := &v1alpha1.NodeConfig{ObjectMeta: metav1.ObjectMeta{Name: "hand-made"}}
	if err := cs[0].c.Create(ctx, unowned); err != nil {
		t.Fatal(err)
	}

	inv := map[string][]inventory.Entry{}
	first := applyAll(ctx, t, cs, topo, observe(ctx, t, cs), inv)
	hostRes := first["host"]
	for _, want := range []string{"Namespace/kosmos-system", "NodeConfig/host-n1", "NodeConfig/host-n2", "Cluster/member-a", "Cluster/member-b", "Cluster/member-c", "DistributionPolicy/web-weighted", "DistributionPolicy/api-fixed", "ClusterPeers/member-a.0-of-1", "ClusterPeers/member-b.0-of-1", "ClusterPeers/member-c.0-of-1"} {
		if !slices.Contains(hostRes.Created, want) {
			t.Errorf("host: %s not created; created %v", want, hostRes.Created)
		}
	}
	var gw v1alpha1.NodeConfigList
	if err := cs[2].c.List(ctx, &gw, client.MatchingLabels{v1alpha1.LabelRole: v1alpha1.RoleGateway}); err != nil || len(gw.Items) != 1 {
		t.Fatalf("member-b should have exactly one gateway NodeConfig: %v %v", err, gw.Items)
	}

	// The same topology and facts again: zero write requests anywhere.
	for _, cl := range cs {
		cl.writes.Store(0)
	}
	second := applyAll(ctx, t, cs, topo, observe(ctx, t, cs), inv)
	for _, cl := range cs {
		if n := cl.writes.Load(); n != 0 || second[cl.name].Writes() != 0 {
			t.Errorf("%s: an unchanged topology made %d write requests (%+v)", cl.name, n, second[cl.name])
		}
	}

	// Drift: a managed NodeConfig edited by hand is reverted.
	var nc v1alpha1.NodeConfig
	if err := cs[1].c.Get(ctx, client.ObjectKey{Name: "member-a-n1"}, &nc); err != nil {
		t.Fatal(err)
	}
	nc.Spec.Devices[0].Port++
	if err := cs[1].c.Update(ctx, &nc); err != nil {
		t.Fatal(err)
	}
	third := applyAll(ctx, t, cs, topo, observe(ctx, t, cs), inv)
	if !slices.Equal(third["member-a"].Updated, []string{"NodeConfig/member-a-n1"}) {
		t.Errorf("drift not reverted: %+v", third["member-a"])
	}

	// A node leaves: its NodeConfig is pruned; the unowned object stays.
	if err := cs[0].c.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "host-n2"}}); err != nil {
		t.Fatal(err)
	}
	fourth := applyAll(ctx, t, cs, topo, observe(ctx, t, cs), inv)
	if !slices.Equal(fourth["host"].Pruned, []string{"NodeConfig/host-n2"}) {
		t.Errorf("host prune: %+v", fourth["host"])
	}
	if err := cs[0].c.Get(ctx, client.ObjectKey{Name: "hand-made"}, &v1alpha1.NodeConfig{}); err != nil {
		t.Errorf("an unowned object was touched: %v", err)
	}
	for _, e := range inv["host"] {
		if e.Kind == "Namespace" || e.UID == "" {
			t.Errorf("inventory entry %v: namespaces are never recorded, every entry has a UID", e)
		}
	}

	// Someone replaces a NodeConfig Kosmos wrote by one of their own (same
	// name, another UID); its node leaves: prune releases the entry and
	// leaves their object alone (the delete carries the recorded UID).
	theirs := &v1alpha1.NodeConfig{ObjectMeta: metav1.ObjectMeta{Name: "member-c-n2"}}
	if err := cs[3].c.Delete(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	if err := cs[3].c.Create(ctx, &v1alpha1.NodeConfig{ObjectMeta: metav1.ObjectMeta{Name: "member-c-n2"}}); err != nil {
		t.Fatal(err)
	}
	if err := cs[3].c.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "member-c-n2"}}); err != nil {
		t.Fatal(err)
	}
	fifth := applyAll(ctx, t, cs, topo, observe(ctx, t, cs), inv)
	if !slices.Equal(fifth["member-c"].Released, []string{"NodeConfig/member-c-n2"}) || len(fifth["member-c"].Pruned) != 0 {
		t.Errorf("member-c: a replaced object was not released: %+v", fifth["member-c"])
	}
	if err := cs[3].c.Get(ctx, client.ObjectKey{Name: "member-c-n2"}, &v1alpha1.NodeConfig{}); err != nil {
		t.Errorf("their NodeConfig was deleted: %v", err)
	}

	// A write that fails is reported as failed, never as created, and the
	// others go through.
	bad := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Namespace: "no-such-namespace", Name: "x"}}
	good := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "y"}}
	res, next, err := apply.Cluster(ctx, cs[0].c, []client.Object{bad, good}, apply.Options{})
	if err == nil || !strings.Contains(err.Error(), "apply ConfigMap/no-such-namespace/x") {
		t.Errorf("failed create: err %v", err)
	}
	if !slices.Equal(res.Failed, []string{"ConfigMap/no-such-namespace/x"}) || !slices.Equal(res.Created, []string{"ConfigMap/default/y"}) {
		t.Errorf("failed create reported as %+v", res)
	}
	if len(next) != 1 || next[0].Name != "y" {
		t.Errorf("inventory after a failed create: %v", next)
	}

	// Add before delete: y is no longer wanted, but a write of the same
	// pass fails (z, the object that would replace it): y is not pruned
	// and stays recorded; once the writes succeed, it goes.
	z := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Namespace: "no-such-namespace", Name: "z"}}
	res, kept, _ := apply.Cluster(ctx, cs[0].c, []client.Object{z}, apply.Options{Inventory: next, Prune: true})
	if len(res.Pruned) != 0 || len(kept) != 1 || kept[0].Name != "y" {
		t.Errorf("a pass whose write failed pruned: %+v, inventory %v", res, kept)
	}
	if err := cs[0].c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "y"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("y was deleted while its replacement failed: %v", err)
	}
	z.Namespace = "default"
	if res, _, err := apply.Cluster(ctx, cs[0].c, []client.Object{z}, apply.Options{Inventory: kept, Prune: true}); err != nil || !slices.Equal(res.Pruned, []string{"ConfigMap/default/y"}) {
		t.Errorf("once the writes succeed, y is pruned: %+v %v", res, err)
	}
}

func TestSubset(t *testing.T) {
	for _, c := range []struct {
		want, have any
		ok         bool
	}{
		{map[string]any{"a": int64(1)}, map[string]any{"a": int64(1), "b": "x"}, true},
		{map[string]any{"a": int64(1)}, map[string]any{"a": int64(2)}, false},
		{map[string]any{"a": map[string]any{}}, map[string]any{}, true},
		{map[string]any{"a": []any{}}, map[string]any{}, true},
		{map[string]any{"a": []any{"x"}}, map[string]any{"a": []any{"x", "y"}}, false},
		{map[string]any{"a": int64(3)}, map[string]any{"a": float64(3)}, true},
		{map[string]any{"a": "x"}, map[string]any{}, false},
	} {
		if got := apply.Subset(c.want, c.have); got != c.ok {
			t.Errorf("Subset(%v, %v) = %v", c.want, c.have, got)
		}
	}
}
