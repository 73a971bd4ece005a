package reconciler_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/reconciler/apply"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// fleet is the example topology on four real control planes with two nodes
// each, reached through kubeconfig contexts.
type fleet struct {
	env     *testenv.Env
	topo    *v1alpha1.KosmosTopology
	clients map[string]client.Client
}

func startFleet(t *testing.T) *fleet {
	t.Helper()
	names := []string{"host", "member-a", "member-b", "member-c"}
	f := &fleet{env: testenv.StartT(t, testenv.Options{Names: names})}
	f.clients = f.env.ClientsT(t)
	var err error
	if err := testenv.ExampleNodes(context.Background(), f.clients); err != nil {
		t.Fatal(err)
	}
	if f.topo, err = schema.LoadFile(filepath.Join("..", "topology.example.yaml")); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fleet) connect(t *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
	return reconciler.ConnectContexts(t, f.env.KubeconfigPath)
}

// pass runs one pass of topo as the CLI does (every call a fresh process:
// nothing carried over but what the clusters hold).
func (f *fleet) pass(t *testing.T, topo *v1alpha1.KosmosTopology, opts reconciler.PassOptions) reconciler.Report {
	t.Helper()
	clusters, err := f.connect(topo)
	if err != nil {
		t.Fatal(err)
	}
	opts.Prune, opts.Connect = !opts.PruneAll, f.connect // PruneAll prunes whatever Prune says
	if opts.ClusterTimeout == 0 {
		opts.ClusterTimeout = 15 * time.Second
	}
	return reconciler.Pass(context.Background(), topo, clusters, opts)
}

func (f *fleet) diff(t *testing.T, topo *v1alpha1.KosmosTopology) reconciler.DiffReport {
	t.Helper()
	clusters, err := f.connect(topo)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := reconciler.LiveDiff(context.Background(), topo, clusters, reconciler.PassOptions{Prune: true, Connect: f.connect})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// owned lists what carries both ownership labels in a cluster.
func (f *fleet) owned(t *testing.T, cluster string) []string {
	t.Helper()
	es, err := apply.LegacyOwned(context.Background(), f.clients[cluster], "example")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Key())
	}
	return out
}

// without returns topo without the named clusters (and their placements).
func without(topo *v1alpha1.KosmosTopology, names ...string) *v1alpha1.KosmosTopology {
	out := topo.DeepCopy()
	out.Spec.Clusters = slices.DeleteFunc(out.Spec.Clusters, func(c v1alpha1.ClusterSpec) bool { return slices.Contains(names, c.Name) })
	for i := range out.Spec.DistributionPolicies {
		pl := &out.Spec.DistributionPolicies[i].Placement
		pl.Clusters = slices.DeleteFunc(pl.Clusters, func(c v1alpha1.ClusterPlacement) bool { return slices.Contains(names, c.Name) })
	}
	for i := range out.Spec.Services {
		out.Spec.Services[i].Clusters = slices.DeleteFunc(out.Spec.Services[i].Clusters, func(c string) bool { return slices.Contains(names, c) })
	}
	return out
}

func changesOf(rep reconciler.DiffReport, cluster string) []string {
	var out []string
	for _, c := range rep.Changes() {
		if c.Cluster == cluster {
			out = append(out, c.Action+" "+c.Key)
		}
	}
	return out
}

func exportService(t *testing.T, c client.Client, name string, port int32) {
	t.Helper()
	ctx := context.Background()
	if err := client.IgnoreAlreadyExists(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "grpc", Port: port, Protocol: corev1.ProtocolTCP}}}}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.2.9"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("grpc"), Port: ptr(port), Protocol: ptr(corev1.ProtocolTCP)}}}
	if err := c.Create(ctx, slice); err != nil {
		t.Fatal(err)
	}
}

// TestPruneByInventory follows the example fleet through its life: the
// inventory is recorded, a second pass and the live diff change nothing, a
// member's service change shows in the diff before anything is written,
// prune finds what an earlier process applied, clusters that leave are
// cleaned (also after being unreachable), a truncated topology is held by
// the guard until confirmed, and --prune-all takes Kosmos out.
func TestPruneByInventory(t *testing.T) {
	f := startFleet(t)
	ctx := context.Background()
	exportService(t, f.clients["member-b"], "api", 9090)
	if err := f.clients["member-a"].Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}

	t.Run("first pass records the inventory", func(t *testing.T) {
		rep := f.pass(t, f.topo, reconciler.PassOptions{})
		if err := rep.Err(); err != nil {
			t.Fatal(err)
		}
		var cm corev1.ConfigMap
		if err := f.clients["host"].Get(ctx, client.ObjectKey{Namespace: "kosmos-system", Name: "kosmos-inventory-example"}, &cm); err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"host", "member-a", "member-b", "member-c"} {
			if !strings.Contains(cm.Data[c], "ConfigMap kosmos-system/kosmos-dns") {
				t.Errorf("inventory of %s lacks the kosmos-dns ConfigMap:\n%s", c, cm.Data[c])
			}
		}
		if !strings.Contains(cm.Data["member-b"], "ServiceExport shop/api") || !strings.Contains(cm.Data["member-a"], "ServiceImport shop/api") {
			t.Errorf("inventory lacks the MCS objects:\n%s\n%s", cm.Data["member-b"], cm.Data["member-a"])
		}
	})

	t.Run("the derived Services' ClusterIPs go into the imports", func(t *testing.T) {
		// The first pass created the Services derived from ClusterSetIP
		// imports; their ClusterIPs, allocated by the API servers, are the
		// imports' spec.ips from the next pass on: one update per import.
		rep := f.pass(t, f.topo, reconciler.PassOptions{})
		for _, c := range rep.Clusters {
			if c.Err != nil || len(c.Result.Created)+len(c.Result.Pruned) != 0 || slices.ContainsFunc(c.Result.Updated, func(k string) bool { return !strings.HasPrefix(k, "ServiceImport/") }) {
				t.Errorf("cluster %s: second pass: %v %+v", c.Name, c.Err, c.Result)
			}
		}
	})

	t.Run("nothing more to do", func(t *testing.T) {
		rep := f.pass(t, f.topo, reconciler.PassOptions{})
		for _, c := range rep.Clusters {
			if c.Err != nil || c.Result.Writes() != 0 {
				t.Errorf("cluster %s: second pass: %v %+v", c.Name, c.Err, c.Result)
			}
		}
		if ch := f.diff(t, f.topo).Changes(); len(ch) != 0 {
			t.Errorf("diff after apply: %d changes, first %s %s/%s", len(ch), ch[0].Action, ch[0].Cluster, ch[0].Key)
		}
	})

	t.Run("a member's service change shows in the diff first", func(t *testing.T) {
		var svc corev1.Service
		if err := f.clients["member-b"].Get(ctx, client.ObjectKey{Namespace: "shop", Name: "api"}, &svc); err != nil {
			t.Fatal(err)
		}
		svc.Spec.Ports[0].Port = 9091
		if err := f.clients["member-b"].Update(ctx, &svc); err != nil {
			t.Fatal(err)
		}
		var slice discoveryv1.EndpointSlice // as the EndpointSlice controller would
		if err := f.clients["member-b"].Get(ctx, client.ObjectKey{Namespace: "shop", Name: "api-1"}, &slice); err != nil {
			t.Fatal(err)
		}
		slice.Ports[0].Port = ptr(int32(9091))
		if err := f.clients["member-b"].Update(ctx, &slice); err != nil {
			t.Fatal(err)
		}
		got := changesOf(f.diff(t, f.topo), "member-a")
		if !slices.Contains(got, "update ServiceImport/shop/api") || !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "update EndpointSlice/shop/api-member-b") }) {
			t.Errorf("member-a's diff: %v", got)
		}
		var si mcsv1a1.ServiceImport
		if err := f.clients["member-a"].Get(ctx, client.ObjectKey{Namespace: "shop", Name: "api"}, &si); err != nil || si.Spec.Ports[0].Port != 9090 {
			t.Errorf("the diff wrote: %v %+v", err, si.Spec.Ports)
		}
		if err := f.pass(t, f.topo, reconciler.PassOptions{}).Err(); err != nil {
			t.Fatal(err)
		}
		if err := f.clients["member-a"].Get(ctx, client.ObjectKey{Namespace: "shop", Name: "api"}, &si); err != nil || si.Spec.Ports[0].Port != 9091 {
			t.Errorf("after apply: %v %+v", err, si.Spec.Ports)
		}
	})

	t.Run("a fresh process prunes what an earlier one applied", func(t *testing.T) {
		if err := f.clients["member-a"].Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "member-a-n2"}}); err != nil {
			t.Fatal(err)
		}
		rep := f.pass(t, f.topo, reconciler.PassOptions{})
		if a := rep.Clusters[1]; a.Err != nil || !slices.Equal(a.Result.Pruned, []string{"NodeConfig/member-a-n2"}) {
			t.Errorf("member-a: %v %+v", a.Err, a.Result)
		}
	})

	noC := without(f.topo, "member-c")
	t.Run("a cluster that leaves is cleaned, then forgotten", func(t *testing.T) {
		d := f.diff(t, noC)
		var leaving *reconciler.ClusterDiff
		for i := range d.Clusters {
			if d.Clusters[i].Cluster == "member-c" {
				leaving = &d.Clusters[i]
			}
		}
		// member-c holds its two NodeConfigs, its kosmos-dns ConfigMap and
		// the ClusterPeers of host, member-a and member-b.
		if leaving == nil || !leaving.Leaving || len(leaving.After) != 0 || len(leaving.Before) != 6 {
			t.Fatalf("diff of member-c leaving: %+v", leaving)
		}
		if got := changesOf(d, "host"); !slices.Contains(got, "delete Cluster/member-c") {
			t.Errorf("host's diff: %v", got)
		}
		rep := f.pass(t, noC, reconciler.PassOptions{})
		if err := rep.Err(); err != nil {
			t.Fatal(err)
		}
		c := rep.Clusters[len(rep.Clusters)-1]
		if c.Name != "member-c" || !c.Forgotten || len(c.Result.Pruned) != 6 {
			t.Errorf("member-c: %+v", c)
		}
		if got := f.owned(t, "member-c"); len(got) != 0 {
			t.Errorf("member-c still holds %v", got)
		}
		for _, n := range []string{"host", "member-a", "member-b"} {
			if err := f.clients[n].Get(ctx, client.ObjectKey{Name: "member-c.0-of-1"}, &v1alpha1.ClusterPeers{}); !apierrors.IsNotFound(err) {
				t.Errorf("%s still holds member-c's ClusterPeers (%v)", n, err)
			}
		}
		for _, n := range []string{"host", "member-a", "member-b"} {
			var ncs v1alpha1.NodeConfigList
			if err := f.clients[n].List(ctx, &ncs); err != nil {
				t.Fatal(err)
			}
			for _, nc := range ncs.Items {
				for _, r := range derivedOf(t, f.clients[n], &nc).Routes {
					if strings.HasPrefix(r.Dst, "10.30.") || strings.HasPrefix(r.Dst, "fd00:30:") {
						t.Errorf("%s/%s still routes to member-c: %s", n, nc.Name, r.Dst)
					}
				}
			}
		}
		var cm corev1.ConfigMap
		if err := f.clients["host"].Get(ctx, client.ObjectKey{Namespace: "kosmos-system", Name: "kosmos-inventory-example"}, &cm); err != nil || cm.Data["member-c"] != "" {
			t.Errorf("member-c is still in the inventory: %v", err)
		}
	})

	noB := without(noC, "member-b")
	t.Run("a cluster that leaves while unreachable is cleaned once it answers", func(t *testing.T) {
		if err := f.env.Cluster("member-b").Pause(); err != nil {
			t.Fatal(err)
		}
		resumed := false
		defer func() {
			if !resumed {
				_ = f.env.Cluster("member-b").Resume()
			}
		}()
		// Half of what Kosmos owns goes with member-b: the guard is off here
		// (it is the next step's subject).
		rep := f.pass(t, noB, reconciler.PassOptions{GuardPercent: 100, ClusterTimeout: 3 * time.Second})
		for _, c := range rep.Clusters {
			switch {
			case c.Name == "member-b":
				if !c.Leaving || c.Forgotten || c.Err == nil || !strings.Contains(c.Err.Error(), "cleanup is pending") {
					t.Errorf("member-b: %+v", c)
				}
			case c.Err != nil:
				t.Errorf("cluster %s did not converge while member-b was away: %v", c.Name, c.Err)
			}
		}
		if got := f.owned(t, "host"); slices.Contains(got, "Cluster/member-b") {
			t.Error("the host still holds Cluster/member-b")
		}
		if err := f.env.Cluster("member-b").Resume(); err != nil {
			t.Fatal(err)
		}
		resumed = true
		rep = f.pass(t, noB, reconciler.PassOptions{GuardPercent: 100})
		if err := rep.Err(); err != nil {
			t.Fatal(err)
		}
		if got := f.owned(t, "member-b"); len(got) != 0 {
			t.Errorf("member-b still holds %v", got)
		}
	})

	hostOnly := without(noB, "member-a")
	hostOnly.Spec.DistributionPolicies, hostOnly.Spec.Services = nil, nil
	t.Run("a truncated topology is held by the guard until confirmed", func(t *testing.T) {
		before := f.owned(t, "member-a")
		rep := f.pass(t, hostOnly, reconciler.PassOptions{})
		if !rep.Guard.Tripped || rep.Guard.Token == "" || rep.Err() == nil || !strings.Contains(rep.Err().Error(), "deletion guard") {
			t.Fatalf("guard: %+v", rep.Guard)
		}
		for _, c := range rep.Clusters {
			if c.Result.Writes() != 0 {
				t.Errorf("cluster %s: the guard let %+v through", c.Name, c.Result)
			}
		}
		if got := f.owned(t, "member-a"); !slices.Equal(got, before) {
			t.Errorf("member-a changed under the guard: %v → %v", before, got)
		}
		if d := f.diff(t, hostOnly); !d.Guard.Tripped || d.Guard.Token != rep.Guard.Token {
			t.Errorf("diff's guard: %+v, the pass's token %s", d.Guard, rep.Guard.Token)
		}
		rep = f.pass(t, hostOnly, reconciler.PassOptions{ConfirmDeletions: rep.Guard.Token})
		if err := rep.Err(); err != nil {
			t.Fatal(err)
		}
		if got := f.owned(t, "member-a"); len(got) != 0 {
			t.Errorf("member-a still holds %v", got)
		}
	})

	t.Run("prune-all takes Kosmos out", func(t *testing.T) {
		rep := f.pass(t, hostOnly, reconciler.PassOptions{PruneAll: true})
		if !rep.Guard.Tripped {
			t.Fatalf("prune-all was not guarded: %+v", rep.Guard)
		}
		rep = f.pass(t, hostOnly, reconciler.PassOptions{PruneAll: true, ConfirmDeletions: rep.Guard.Token})
		if err := rep.Err(); err != nil {
			t.Fatal(err)
		}
		if got := f.owned(t, "host"); len(got) != 0 {
			t.Errorf("the host still holds %v", got)
		}
		if !rep.Saved || len(rep.Inventory) != 0 {
			t.Errorf("after prune-all: saved %v, inventory %v", rep.Saved, rep.Inventory)
		}
		err := f.clients["host"].Get(ctx, client.ObjectKey{Namespace: "kosmos-system", Name: "kosmos-inventory-example"}, &corev1.ConfigMap{})
		if err == nil {
			t.Error("the inventory is still there")
		}
	})
}

// TestSilentClusterKeepsItsRoutes: a fresh process (the CLI, a restarted
// reconciler) that cannot reach member-b plans it from the last good facts
// kept in the host, so nobody loses a route to it; without --partial the
// CLI writes nothing at all.
func TestSilentClusterKeepsItsRoutes(t *testing.T) {
	f := startFleet(t)
	if err := f.pass(t, f.topo, reconciler.PassOptions{}).Err(); err != nil {
		t.Fatal(err)
	}
	routesToB := func() bool {
		nc, ok := derived(t, f.clients["host"], "host-n1")
		if !ok {
			t.Fatal("host-n1's NodeConfig is gone")
		}
		return slices.ContainsFunc(nc.Routes, func(r v1alpha1.Route) bool { return strings.HasPrefix(r.Dst, "100.65.") })
	}
	if !routesToB() {
		t.Fatal("the host does not route to member-b to begin with")
	}
	if err := f.env.Cluster("member-b").Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.env.Cluster("member-b").Resume() }()

	rep := f.pass(t, f.topo, reconciler.PassOptions{RequireAll: true, ClusterTimeout: 3 * time.Second})
	if rep.Refused == nil || !strings.Contains(rep.Refused.Error(), "member-b") {
		t.Errorf("all-or-nothing pass: refused %v", rep.Refused)
	}
	for _, c := range rep.Clusters {
		if c.Result.Writes() != 0 {
			t.Errorf("cluster %s: a refused pass wrote %+v", c.Name, c.Result)
		}
	}

	rep = f.pass(t, f.topo, reconciler.PassOptions{ClusterTimeout: 3 * time.Second})
	for _, c := range rep.Clusters {
		if c.Name != "member-b" && (c.Err != nil || c.Result.Writes() != 0) {
			t.Errorf("cluster %s: %v, writes %+v (member-b's silence changed its plan)", c.Name, c.Err, c.Result)
		}
	}
	if !routesToB() {
		t.Error("the host lost its routes to silent member-b")
	}
}
