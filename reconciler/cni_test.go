package reconciler_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

const cniTopology = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: cni}
spec:
  clusters:
    - name: plain
      role: host
      kubeconfig: {context: plain}
      network: {podCIDRs: [10.10.0.0/16], serviceCIDRs: [10.96.0.0/16]}
    - name: calico
      role: member
      kubeconfig: {context: calico}
      network: {podCIDRs: [10.20.0.0/16], serviceCIDRs: [10.97.0.0/16]}
    - name: cilium
      role: member
      kubeconfig: {context: cilium}
      network: {podCIDRs: [10.30.0.0/16], globalCIDRs: {10.30.0.0/16: 100.30.0.0/16}}
`

func unstructuredOf(apiVersion, kind, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name}, "spec": spec,
	}}
}

func calicoBlock(node, cidr, state string) *unstructured.Unstructured {
	name := node + "-" + strings.NewReplacer(".", "-", "/", "-").Replace(cidr)
	return unstructuredOf(desired.CalicoAPIVersion, desired.KindBlockAffinity, name, map[string]any{"node": node, "cidr": cidr, "state": state, "deleted": "false"})
}

// endpointCIDRs reads, from the ClusterPeers of cluster of held in c, the
// ranges routed to each endpoint.
func endpointCIDRs(t *testing.T, c client.Client, of string) map[string][]string {
	t.Helper()
	var list v1alpha1.ClusterPeersList
	if err := c.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, p := range list.Items {
		if p.Spec.Cluster != of {
			continue
		}
		for _, e := range p.Spec.Endpoints {
			out[e.Name] = e.CIDRs
		}
	}
	return out
}

// TestPodCIDRsFromTheCNI runs passes against three real clusters: one whose
// nodes have Calico blocks and no spec.podCIDRs, one with CiliumNodes
// (cluster-pool IPAM, a mapped range) and a plain one (spec.podCIDRs). Every
// block is routed to its node; a range outside the topology's podCIDRs is a
// problem; the Calico cluster gets disabled IPPools for the others' ranges
// and keeps its own pool; a new block rewrites only the Calico cluster's
// ClusterPeers in the others, no NodeConfig.
func TestPodCIDRsFromTheCNI(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{Names: []string{"plain", "calico", "cilium"}})
	clients := env.ClientsT(t)
	ctx := context.Background()
	for _, name := range []string{"calico", "cilium"} {
		if _, err := envtest.InstallCRDs(env.Cluster(name).Config, envtest.CRDInstallOptions{Paths: []string{filepath.Join("testdata", "cni-crds")}}); err != nil {
			t.Fatalf("install the CNI CRDs in %s: %v", name, err)
		}
	}
	nodes := []struct {
		cluster, name, ip string
		podCIDRs          []string
	}{
		{"plain", "p1", "192.168.1.1", []string{"10.10.1.0/24"}},
		{"plain", "p2", "192.168.1.2", []string{"10.10.2.0/24"}},
		{"calico", "c1", "192.168.2.1", nil},
		{"calico", "c2", "192.168.2.2", nil},
		{"cilium", "s1", "192.168.3.1", nil},
		{"cilium", "s2", "192.168.3.2", []string{"10.244.0.0/24"}}, // not what Cilium routes
	}
	for _, n := range nodes {
		if err := testenv.CreateNode(ctx, clients[n.cluster], n.name, []string{n.ip}, n.podCIDRs, nil); err != nil {
			t.Fatal(err)
		}
	}
	create := func(cluster string, objs ...*unstructured.Unstructured) {
		t.Helper()
		for _, o := range objs {
			if err := clients[cluster].Create(ctx, o); err != nil {
				t.Fatalf("create %s %s in %s: %v", o.GetKind(), o.GetName(), cluster, err)
			}
		}
	}
	create("calico",
		calicoBlock("c1", "10.20.0.0/26", "confirmed"),
		calicoBlock("c1", "10.20.0.64/26", "confirmed"),
		calicoBlock("c2", "10.20.1.0/26", "confirmed"),
		calicoBlock("c2", "10.20.1.64/26", "pending"),
		calicoBlock("c2", "10.99.0.0/26", "confirmed"), // outside podCIDRs
		unstructuredOf(desired.CalicoAPIVersion, desired.KindIPPool, "default-ipv4-ippool", map[string]any{"cidr": "10.20.0.0/16", "natOutgoing": true}),
	)
	create("cilium",
		unstructuredOf(desired.CiliumAPIVersion, desired.KindCiliumNode, "s1", map[string]any{"ipam": map[string]any{"podCIDRs": []any{"10.30.1.0/24"}}}),
		unstructuredOf(desired.CiliumAPIVersion, desired.KindCiliumNode, "s2", map[string]any{"ipam": map[string]any{"podCIDRs": []any{"10.30.2.0/24", "10.30.3.0/24"}}}),
	)

	topo, err := schema.Load("cni.yaml", []byte(cniTopology))
	if err != nil {
		t.Fatal(err)
	}
	pass := func() reconciler.Report {
		t.Helper()
		clusters, err := reconciler.ConnectContexts(topo, env.KubeconfigPath)
		if err != nil {
			t.Fatal(err)
		}
		rep := reconciler.Pass(ctx, topo, clusters, reconciler.PassOptions{Prune: true, ClusterTimeout: 15 * time.Second})
		if err := rep.Err(); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := pass()

	wantProblem := "cluster calico: node c2 has pod range 10.99.0.0/26 outside network.podCIDRs [10.20.0.0/16]; it is not routed"
	if !slices.Contains(rep.Problems, wantProblem) {
		t.Errorf("problems %q lack %q", rep.Problems, wantProblem)
	}
	for cluster, ipam := range map[string]v1alpha1.IPAMSource{"plain": "", "calico": v1alpha1.IPAMCalico, "cilium": v1alpha1.IPAMCilium} {
		if got := rep.Facts[cluster].IPAM; got != ipam {
			t.Errorf("cluster %s: ipam %q, want %q", cluster, got, ipam)
		}
	}
	want := map[string]map[string][]string{
		"calico": {"c1": {"10.20.0.0/26", "10.20.0.64/26", "10.97.0.0/16"}, "c2": {"10.20.1.0/26"}},
		"cilium": {"s1": {"100.30.1.0/24"}, "s2": {"100.30.2.0/24", "100.30.3.0/24"}},
		"plain":  {"p1": {"10.10.1.0/24", "10.96.0.0/16"}, "p2": {"10.10.2.0/24"}},
	}
	check := func() {
		t.Helper()
		for of, eps := range want {
			for _, in := range []string{"plain", "calico", "cilium"} {
				if in == of {
					continue
				}
				if got := endpointCIDRs(t, clients[in], of); fmt.Sprint(got) != fmt.Sprint(eps) {
					t.Errorf("ClusterPeers of %s in %s route %v, want %v", of, in, got, eps)
				}
			}
		}
	}
	check()

	pools := func(cluster string) map[string]string {
		t.Helper()
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion(desired.CalicoAPIVersion)
		l.SetKind(desired.KindIPPool + "List")
		if err := clients[cluster].List(ctx, l); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, p := range l.Items {
			out[p.GetName()] = fmt.Sprint(p.Object["spec"], " managed-by=", p.GetLabels()[v1alpha1.LabelManagedBy])
		}
		return out
	}
	wantPools := map[string]string{
		"default-ipv4-ippool":         "map[cidr:10.20.0.0/16 natOutgoing:true] managed-by=",
		"kosmos-cilium-100-30-0-0-16": "map[cidr:100.30.0.0/16 disabled:true ipipMode:Never natOutgoing:false nodeSelector:!all() vxlanMode:Never] managed-by=kosmos",
		"kosmos-plain-10-10-0-0-16":   "map[cidr:10.10.0.0/16 disabled:true ipipMode:Never natOutgoing:false nodeSelector:!all() vxlanMode:Never] managed-by=kosmos",
		"kosmos-plain-10-96-0-0-16":   "map[cidr:10.96.0.0/16 disabled:true ipipMode:Never natOutgoing:false nodeSelector:!all() vxlanMode:Never] managed-by=kosmos",
	}
	if got := pools("calico"); fmt.Sprint(got) != fmt.Sprint(wantPools) {
		t.Errorf("IPPools in calico:\n got %v\nwant %v", got, wantPools)
	}
	if got := pools("cilium"); len(got) != 0 {
		t.Errorf("IPPools in cilium, which is not a Calico cluster: %v", got)
	}

	// Calico adds a block to c1: the others' copies of the calico
	// ClusterPeers shard change, nothing else anywhere.
	create("calico", calicoBlock("c1", "10.20.0.128/26", "confirmed"))
	rep = pass()
	want["calico"]["c1"] = []string{"10.20.0.0/26", "10.20.0.64/26", "10.20.0.128/26", "10.97.0.0/16"}
	check()
	var writes []string
	for _, c := range rep.Clusters {
		for _, k := range slices.Concat(c.Result.Created, c.Result.Updated, c.Result.Pruned) {
			writes = append(writes, c.Name+": "+k)
		}
	}
	slices.Sort(writes)
	wantWrites := []string{"cilium: ClusterPeers/calico.0-of-1", "plain: ClusterPeers/calico.0-of-1"}
	t.Logf("writes for one new block: %v", writes)
	if !slices.Equal(writes, wantWrites) {
		t.Errorf("a new block wrote %v, want %v", writes, wantWrites)
	}

	// The controller, woken by the BlockAffinity watch alone (its resync
	// is an hour), routes a block Calico adds while it runs.
	file := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(file, []byte(cniTopology), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl := &reconciler.Controller{
		TopologyPath: file, Resync: time.Hour, Prune: true,
		Connect: func(tp *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
			return reconciler.ConnectContexts(tp, env.KubeconfigPath)
		},
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	passes := make(chan error, 100)
	ctl.OnPass = func(_ reconciler.Report, err error) {
		select {
		case passes <- err:
		default:
		}
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = ctl.Run(rctx) }()
	<-passes
	drain(passes) // idle: the passes the start-up watches cause are over
	create("calico", calicoBlock("c2", "10.20.1.128/26", "confirmed"))
	took := poll.Until(t, 30*time.Second, "the controller routes the new block of c2", func() bool {
		return slices.Contains(endpointCIDRs(t, clients["plain"], "calico")["c2"], "10.20.1.128/26")
	})
	t.Logf("the controller routed a new block %s after it was created", took)
	stop()
	<-done

	// Set to NodeSpec, the calico cluster routes what its nodes' specs
	// say (nothing) and its Kosmos pools are pruned; the user's stays.
	topo.Spec.Clusters[1].Network.IPAM = v1alpha1.IPAMNodeSpec
	pass()
	if got := pools("calico"); len(got) != 1 || got["default-ipv4-ippool"] == "" {
		t.Errorf("after ipam NodeSpec, IPPools in calico: %v, want only the user's default-ipv4-ippool", got)
	}
}
