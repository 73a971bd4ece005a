package probe_test

import (
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/internal/probe"
	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestExportSweepsKilledRuns: on a real API server, a run (as a user who
// holds only kustomize/base/probe's Role) deletes at its start the probe
// Service and ServiceExport a killed run left, once they are older than the
// deadline; a younger run's objects, this run's, and a Service in the
// probe namespace without the probe's labels are left alone.
func TestExportSweepsKilledRuns(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{Names: []string{"a"}, CRDDirs: []string{filepath.Join("..", "..", "kustomize", "base", "crds")}})
	admin := env.ClientsT(t)["a"]
	ctx := t.Context()
	applyManifests(t, admin, "namespace.yaml", "rbac.yaml", "rolebinding.example.yaml")
	cfg := rest.CopyConfig(env.Cluster("a").Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "alice", Groups: []string{"fleet-operators", "system:authenticated"}}
	alice, err := client.New(cfg, client.Options{Scheme: admin.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	labels := func(run string) map[string]string {
		return map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, "app.kubernetes.io/name": "kosmos-probe", probe.LabelRun: run}
	}
	create := func(name string, l map[string]string, export bool) []client.Object {
		t.Helper()
		meta := metav1.ObjectMeta{Namespace: probe.DefaultNamespace, Name: name, Labels: l}
		objs := []client.Object{&corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 4999}}}}}
		if export {
			objs = append(objs, &mcsv1a1.ServiceExport{ObjectMeta: meta})
		}
		for _, o := range objs {
			if err := admin.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		return objs
	}
	dead := create(probe.ServiceName("dead", "a"), labels("dead"), true)
	created := dead[1].GetCreationTimestamp().Time // the later of the two
	poll.Until(t, time.Minute, "the killed run's objects older than 10 s", func() bool { return time.Since(created) > 10*time.Second })
	live := create(probe.ServiceName("live", "a"), labels("live"), true)
	mine := create(probe.ServiceName("mine", "a"), labels("mine"), false)
	user := create("web", nil, false)

	x := &probe.Exporter{Clusters: map[string]client.Client{"a": alice}, Namespace: probe.DefaultNamespace, Run: "mine", MaxAge: 8 * time.Second}
	n, err := x.Sweep(ctx)
	if err != nil || n != 2 {
		t.Errorf("Sweep: %d deleted, err %v; want the killed run's Service and export", n, err)
	}
	exists := func(o client.Object) bool {
		err := admin.Get(ctx, client.ObjectKeyFromObject(o), o.DeepCopyObject().(client.Object))
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}
	for _, o := range dead {
		if exists(o) {
			t.Errorf("%T %s of the killed run left", o, o.GetName())
		}
	}
	for _, o := range append(append(live, mine...), user...) {
		if !exists(o) {
			t.Errorf("%T %s deleted; it is not a killed run's", o, o.GetName())
		}
	}
	// Export sweeps first: a killed run's export is gone before the new run exports.
	dead = create(probe.ServiceName("dead2", "a"), labels("dead2"), true)
	x.MaxAge = time.Nanosecond
	x.Run = "live"
	if _, _, err := x.Export(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for _, o := range append(dead, mine...) {
		if exists(o) {
			t.Errorf("after Export: %T %s left", o, o.GetName())
		}
	}
	if !exists(live[0]) || !exists(user[0]) {
		t.Error("after Export: the run's own Service or the user's was deleted")
	}
}
