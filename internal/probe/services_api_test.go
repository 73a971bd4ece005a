package probe_test

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/internal/probe"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema/v1alpha1"
)

const svcTopology = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: fleet}
spec:
  clusters:
    - name: a
      role: host
      kubeconfig: {context: a}
      network: {podCIDRs: [10.1.0.0/16], serviceCIDRs: [10.0.1.0/24]}
    - name: b
      role: member
      kubeconfig: {context: b}
      network: {podCIDRs: [10.2.0.0/16], serviceCIDRs: [10.0.2.0/24]}
`

// TestPodRunnerExportsServices: against two real API servers with the MCS
// CRDs and the real reconciler, kosmos check --probe, acting as a user who
// holds only kustomize/base/probe's Role, exports a probe Service of each
// cluster's pod-network server pod (its selector), and each other cluster
// imports it with a ClusterSetIP from its own service range: the VIPs the
// run probes. Closing the run deletes the Services and ServiceExports.
func TestPodRunnerExportsServices(t *testing.T) {
	names := []string{"a", "b"}
	args := map[string]map[string]string{"a": {"service-cluster-ip-range": "10.0.1.0/24"}, "b": {"service-cluster-ip-range": "10.0.2.0/24"}}
	env := testenv.StartT(t, testenv.Options{Names: names, CRDDirs: []string{filepath.Join("..", "..", "kustomize", "base", "crds")}, ClusterArgs: args})
	clients := env.ClientsT(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	prober := map[string]client.Client{}
	for name, c := range clients {
		applyManifests(t, c, "namespace.yaml", "rbac.yaml", "rolebinding.example.yaml")
		cfg := rest.CopyConfig(env.Cluster(name).Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "alice", Groups: []string{"fleet-operators", "system:authenticated"}}
		pc, err := client.New(cfg, client.Options{Scheme: c.Scheme()})
		if err != nil {
			t.Fatal(err)
		}
		prober[name] = pc
	}
	topoPath := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(topoPath, []byte(svcTopology), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl := &reconciler.Controller{
		TopologyPath: topoPath,
		Connect: func(tp *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
			return reconciler.ConnectContexts(tp, env.KubeconfigPath)
		},
		Resync: time.Hour,
		Prune:  true,
		Log:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	ctlCtx, stopCtl := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = ctl.Run(ctlCtx) }()
	defer func() { stopCtl(); <-done }()

	r := &probe.PodRunner{Topology: "fleet", Clusters: prober, Image: "img", Port: 4999, Poll: 100 * time.Millisecond}
	eps := []probe.Endpoint{
		{Cluster: "a", Net: probe.PodNet, Name: "pa", Addrs: []netip.Addr{netip.MustParseAddr("10.1.0.2")}},
		{Cluster: "b", Net: probe.PodNet, Name: "pb", Addrs: []netip.Addr{netip.MustParseAddr("10.2.0.2")}},
	}
	ectx, ecancel := context.WithTimeout(ctx, time.Minute)
	start := time.Now()
	vips, noMCS, err := r.ExportServices(ectx, eps)
	ecancel()
	t.Logf("imports with ClusterSetIPs after %s: %+v", time.Since(start).Round(time.Millisecond), vips)
	if err != nil || len(noMCS) > 0 {
		t.Fatalf("ExportServices: %v (no MCS in %v)", err, noMCS)
	}
	ranges := map[string]netip.Prefix{"a": netip.MustParsePrefix("10.0.1.0/24"), "b": netip.MustParsePrefix("10.0.2.0/24")}
	if len(vips) != 2 {
		t.Fatalf("%d VIPs, want a → b and b → a", len(vips))
	}
	for _, v := range vips {
		if v.Err != "" || len(v.Addrs) != 1 || !ranges[v.Importer].Contains(v.Addrs[0]) || v.Service != probe.DefaultNamespace+"/"+probe.ServiceName(r.RunID(), v.Exporter) {
			t.Errorf("VIP %+v: want one ClusterSetIP in %s's service range %s for %s's probe service", v, v.Importer, ranges[v.Importer], v.Exporter)
		}
	}
	for _, name := range names {
		var svc corev1.Service
		key := client.ObjectKey{Namespace: probe.DefaultNamespace, Name: probe.ServiceName(r.RunID(), name)}
		if err := clients[name].Get(ctx, key, &svc); err != nil {
			t.Fatalf("cluster %s: %v", name, err)
		}
		sel := svc.Spec.Selector
		if sel[probe.LabelRun] != r.RunID() || sel[probe.LabelNet] != "pod" || sel[probe.LabelRole] != "server" || len(svc.Spec.Ports) != 2 {
			t.Errorf("cluster %s: Service %s selects %v with ports %v, want the run's pod-network server pod, TCP and UDP", name, key, sel, svc.Spec.Ports)
		}
		if svc.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedBy || svc.Labels[v1alpha1.LabelTopology] != "" {
			t.Errorf("cluster %s: Service labels %v: want Kosmos's, without the topology label (the reconciler would take its export for its own)", name, svc.Labels)
		}
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		var svcs corev1.ServiceList
		var exps mcsv1a1.ServiceExportList
		for _, l := range []client.ObjectList{&svcs, &exps} {
			if err := clients[name].List(ctx, l, client.InNamespace(probe.DefaultNamespace), client.MatchingLabels{probe.LabelRun: r.RunID()}); err != nil {
				t.Fatal(err)
			}
		}
		if len(svcs.Items)+len(exps.Items) > 0 {
			t.Errorf("cluster %s: %d Services and %d ServiceExports of the run left after Close", name, len(svcs.Items), len(exps.Items))
		}
	}

	// Ctrl-C in flight: with the reconciler stopped (no imports come), the
	// run is cancelled while b's ServiceExport is being created (the API
	// server creates it; the client sees the cancel). Close, with a fresh
	// context, still removes everything of the run, that export too.
	stopCtl()
	<-done
	runCtx, ctrlC := context.WithCancel(ctx)
	defer ctrlC()
	cut := map[string]client.Client{}
	for _, name := range names {
		cfg := rest.CopyConfig(env.Cluster(name).Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "alice", Groups: []string{"fleet-operators", "system:authenticated"}}
		wc, err := client.NewWithWatch(cfg, client.Options{Scheme: clients[name].Scheme()})
		if err != nil {
			t.Fatal(err)
		}
		cut[name] = interceptor.NewClient(wc, interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*mcsv1a1.ServiceExport); ok && name == "b" {
				err := c.Create(context.WithoutCancel(ctx), obj, opts...)
				ctrlC()
				if err != nil {
					return err
				}
				return context.Canceled
			}
			return c.Create(ctx, obj, opts...)
		}})
	}
	r2 := &probe.PodRunner{Topology: "fleet", Clusters: cut, Image: "img", Port: 4999, Poll: 100 * time.Millisecond}
	vips, _, err = r2.ExportServices(runCtx, eps)
	t.Logf("after the cancel: VIPs %+v, %v", vips, err)
	for _, v := range vips {
		if v.Err == "" {
			t.Errorf("VIP %+v without a reconciler", v)
		}
	}
	var exp mcsv1a1.ServiceExport
	if err := clients["b"].Get(ctx, client.ObjectKey{Namespace: probe.DefaultNamespace, Name: probe.ServiceName(r2.RunID(), "b")}, &exp); err != nil {
		t.Fatalf("b's ServiceExport was not created in flight: %v", err)
	}
	if err := r2.Close(context.WithoutCancel(ctx)); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		var svcs corev1.ServiceList
		var exps mcsv1a1.ServiceExportList
		for _, l := range []client.ObjectList{&svcs, &exps} {
			if err := clients[name].List(ctx, l, client.InNamespace(probe.DefaultNamespace), client.MatchingLabels{probe.LabelRun: r2.RunID()}); err != nil {
				t.Fatal(err)
			}
		}
		if len(svcs.Items)+len(exps.Items) > 0 {
			t.Errorf("cluster %s: %d Services and %d ServiceExports left after a Ctrl-C", name, len(svcs.Items), len(exps.Items))
		}
	}
}
