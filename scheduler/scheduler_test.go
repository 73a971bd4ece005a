package scheduler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/scheduler"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// world is a host API server with real and virtual nodes and the real
// kube-scheduler (two profiles: default-scheduler and kosmos-scheduler)
// running in this process against it.
type world struct {
	t   testing.TB
	ctx context.Context
	c   client.Client
}

func newWorld(t testing.TB, ctx context.Context) *world {
	env := testenv.StartT(t, testenv.Options{Names: []string{"host"}, CRDDirs: []string{filepath.Join("..", "kustomize", "base", "crds")}})
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(env.Cluster("host").Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	// The shipped configuration, pointed at this API server, without leader
	// election, and with the default profile beside it for comparison.
	shipped, err := os.ReadFile(filepath.Join("..", "kustomize", "base", "scheduler", "scheduler-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := yaml.Unmarshal(shipped, &conf); err != nil {
		t.Fatal(err)
	}
	conf["clientConnection"] = map[string]any{"kubeconfig": env.KubeconfigPath, "qps": 1000, "burst": 2000}
	conf["leaderElection"] = map[string]any{"leaderElect": false}
	conf["profiles"] = append([]any{map[string]any{"schedulerName": "default-scheduler"}}, conf["profiles"].([]any)...)
	data, err := yaml.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "scheduler.yaml")
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	done, err := scheduler.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { <-done })
	return &world{t: t, ctx: ctx, c: c}
}

func (w *world) create(obj client.Object) {
	w.t.Helper()
	if err := w.c.Create(w.ctx, obj); err != nil {
		w.t.Fatal(err)
	}
}

// node creates a Ready node; cluster != "" makes it a virtual node of that
// member (label, taint, free-resource summary of free per member node).
func (w *world) node(name, cluster, region string, cpu string, free []v1alpha1.FreeNode) {
	w.t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
	if cluster != "" {
		n.Labels[scheduler.LabelCluster] = cluster
		n.Labels["topology.kubernetes.io/region"] = region
		n.Labels["type"] = "virtual-kubelet"
		n.Spec.Taints = []corev1.Taint{{Key: scheduler.TaintLeaf, Value: "true", Effect: corev1.TaintEffectNoSchedule}}
		sum, _ := json.Marshal(v1alpha1.SummarizeFree(free))
		n.Annotations = map[string]string{v1alpha1.AnnotationFreeResources: string(sum)}
	}
	w.create(n)
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("500")}
	n.Status = corev1.NodeStatus{Capacity: res, Allocatable: res, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}}
	if err := w.c.Status().Update(w.ctx, n); err != nil {
		w.t.Fatal(err)
	}
	// The API server taints new nodes not-ready; with no node lifecycle
	// controller here, lift it as that controller would for a Ready node.
	if err := w.c.Get(w.ctx, client.ObjectKeyFromObject(n), n); err != nil {
		w.t.Fatal(err)
	}
	n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == corev1.TaintNodeNotReady })
	if err := w.c.Update(w.ctx, n); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) policy(name string, sel map[string]string, pl v1alpha1.Placement, domains ...v1alpha1.ClusterDomain) {
	w.t.Helper()
	p := &v1alpha1.DistributionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.DistributionPolicyObjectSpec{
		Selector:  v1alpha1.PodSelector{Namespace: "default", LabelSelector: &metav1.LabelSelector{MatchLabels: sel}},
		Placement: pl, HostCluster: "host", Domains: domains,
	}}
	w.create(p)
}

// workload creates a ReplicaSet of n replicas and its pods (the test plays
// the ReplicaSet controller), then waits until all are bound and returns
// the count per cluster ("host" for the host's real nodes).
func (w *world) workload(name string, n int, cpu string, schedulerName string) map[string]int {
	w.t.Helper()
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr(int32(n)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}},
		},
	}
	w.create(rs)
	for i := range n {
		w.create(w.pod(fmt.Sprintf("%s-%d", name, i), name, cpu, schedulerName, rs))
	}
	return w.waitBound(name, n)
}

func (w *world) pod(name, app, cpu, schedulerName string, owner *appsv1.ReplicaSet) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{SchedulerName: schedulerName, Containers: []corev1.Container{{Name: "c", Image: "x",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}},
	}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(owner, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}
	}
	return p
}

func (w *world) placement(app string) (byCluster map[string]int, bound, pending int) {
	var pods corev1.PodList
	if err := w.c.List(w.ctx, &pods, client.InNamespace("default"), client.MatchingLabels{"app": app}); err != nil {
		w.t.Fatal(err)
	}
	byCluster = map[string]int{}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" {
			pending++
			continue
		}
		var n corev1.Node
		if err := w.c.Get(w.ctx, client.ObjectKey{Name: p.Spec.NodeName}, &n); err != nil {
			w.t.Fatal(err)
		}
		c := n.Labels[scheduler.LabelCluster]
		if c == "" {
			c = "host"
		}
		byCluster[c]++
		bound++
	}
	return byCluster, bound, pending
}

func (w *world) waitBound(app string, n int) map[string]int {
	w.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, bound, _ := w.placement(app)
		if bound == n {
			return got
		}
		if time.Now().After(deadline) {
			var pods corev1.PodList
			_ = w.c.List(w.ctx, &pods, client.InNamespace("default"), client.MatchingLabels{"app": app})
			var why []string
			for _, p := range pods.Items {
				if c := podCondition(&p, corev1.PodScheduled); c != nil && p.Spec.NodeName == "" {
					why = append(why, p.Name+": "+c.Message)
				}
			}
			w.t.Fatalf("%s: %d of %d pods bound after 60s (%v)\n%s", app, bound, n, got, strings.Join(why, "\n"))
		}
		<-time.After(50 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }

func weights(ws map[string]int32, order ...string) []v1alpha1.ClusterPlacement {
	var out []v1alpha1.ClusterPlacement
	for _, n := range order {
		out = append(out, v1alpha1.ClusterPlacement{Name: n, Weight: ptr(ws[n])})
	}
	return out
}

// TestSchedulerPlacesByPolicy runs its steps in order on one world: later
// steps lean on what earlier ones placed (the "api" pods, the "even"
// policy).
func TestSchedulerPlacesByPolicy(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newWorld(t, ctx)
	roomy := []v1alpha1.FreeNode{{CPUMilli: 16000, MemoryBytes: 64 << 30, Pods: 100}}
	w.node("host-n1", "", "", "16", nil)
	w.node("host-n2", "", "", "16", nil)
	w.node("kosmos-a", "a", "eu", "64", roomy)
	w.node("kosmos-b", "b", "us", "64", roomy)
	w.node("kosmos-c", "c", "us", "64", roomy)
	// d's aggregate is large, but no single node has more than 1 CPU free.
	w.node("kosmos-d", "d", "eu", "64", []v1alpha1.FreeNode{{CPUMilli: 1000, MemoryBytes: 8 << 30, Pods: 50}, {CPUMilli: 800, MemoryBytes: 16 << 30, Pods: 50}})
	domains := []v1alpha1.ClusterDomain{{Cluster: "a", Region: "eu"}, {Cluster: "b", Region: "us"}, {Cluster: "c", Region: "us"}, {Cluster: "d", Region: "eu"}}

	placesByWeight(t, w, domains)
	placesBySelectorAndMode(t, w, domains)
	keepsOffFragmentedClusters(t, w, domains)
	followsPolicyChanges(t, w)
}

func check(t *testing.T, name string, got, want map[string]int) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: placed %v, want %v", name, got, want)
	} else {
		t.Logf("%s: %v", name, got)
	}
}

// placesByWeight: weighted splits, a scale-up that fills the deficit, and
// a Preferred policy that only scores.
func placesByWeight(t *testing.T, w *world, domains []v1alpha1.ClusterDomain) {
	w.policy("weighted", map[string]string{"app": "web"}, v1alpha1.Placement{Clusters: weights(map[string]int32{"a": 2, "b": 1, "c": 1}, "a", "b", "c")}, domains...)
	check(t, "10 replicas at 2:1:1", w.workload("web", 10, "100m", "kosmos-scheduler"), map[string]int{"a": 5, "b": 3, "c": 2})

	w.policy("even", map[string]string{"app": "api"}, v1alpha1.Placement{Clusters: weights(map[string]int32{"a": 1, "b": 1}, "a", "b")}, domains...)
	check(t, "3 replicas at 1:1", w.workload("api", 3, "100m", "kosmos-scheduler"), map[string]int{"a": 2, "b": 1})

	// Scale-up fills the deficit: 3 → 6 replicas at 1:1 ends 3:3.
	w.policy("grow", map[string]string{"app": "grow"}, v1alpha1.Placement{Clusters: weights(map[string]int32{"a": 1, "b": 1}, "a", "b")}, domains...)
	check(t, "grow: 3 at 1:1", w.workload("grow", 3, "100m", "kosmos-scheduler"), map[string]int{"a": 2, "b": 1})
	var rs appsv1.ReplicaSet
	if err := w.c.Get(w.ctx, client.ObjectKey{Namespace: "default", Name: "grow"}, &rs); err != nil {
		t.Fatal(err)
	}
	rs.Spec.Replicas = ptr(int32(6))
	if err := w.c.Update(w.ctx, &rs); err != nil {
		t.Fatal(err)
	}
	for i := 3; i < 6; i++ {
		w.create(w.pod(fmt.Sprintf("grow-%d", i), "grow", "100m", "kosmos-scheduler", &rs))
	}
	check(t, "grow: scaled to 6", w.waitBound("grow", 6), map[string]int{"a": 3, "b": 3})

	// Preferred only scores: the split still comes out, and nothing is
	// rejected for its share.
	w.policy("soft", map[string]string{"app": "soft"}, v1alpha1.Placement{Mode: v1alpha1.PlacementPreferred, Clusters: weights(map[string]int32{"a": 1, "c": 1}, "a", "c")}, domains...)
	check(t, "preferred 1:1, 4 replicas", w.workload("soft", 4, "100m", "kosmos-scheduler"), map[string]int{"a": 2, "c": 2})
}

// placesBySelectorAndMode: owner selectors, fixed counts, includeHost,
// spread by region, and pods no policy matches.
func placesBySelectorAndMode(t *testing.T, w *world, domains []v1alpha1.ClusterDomain) {
	// An owner selector: only the pods of ReplicaSet "owned" are governed.
	owned := &v1alpha1.DistributionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "owned"}, Spec: v1alpha1.DistributionPolicyObjectSpec{
		Selector:  v1alpha1.PodSelector{Namespace: "default", Owner: &v1alpha1.OwnerSelector{Kind: "ReplicaSet", Name: "owned"}},
		Placement: v1alpha1.Placement{Clusters: weights(map[string]int32{"c": 1}, "c")}, HostCluster: "host", Domains: domains,
	}}
	w.create(owned)
	check(t, "owner selector", w.workload("owned", 3, "100m", "kosmos-scheduler"), map[string]int{"c": 3})
	check(t, "pods of another owner", w.workload("unowned", 2, "100m", "kosmos-scheduler"), map[string]int{"host": 2})

	w.policy("fixed", map[string]string{"app": "db"}, v1alpha1.Placement{Clusters: []v1alpha1.ClusterPlacement{{Name: "c", Replicas: ptr(int32(1))}, {Name: "a", Replicas: ptr(int32(2))}}}, domains...)
	check(t, "fixed c=1 a=2", w.workload("db", 3, "100m", "kosmos-scheduler"), map[string]int{"a": 2, "c": 1})

	w.policy("with-host", map[string]string{"app": "cache"}, v1alpha1.Placement{IncludeHost: true, Clusters: weights(map[string]int32{"b": 1}, "b")}, domains...)
	check(t, "includeHost, host:b at 1:1", w.workload("cache", 4, "100m", "kosmos-scheduler"), map[string]int{"b": 2, "host": 2})

	w.policy("spread", map[string]string{"app": "batch"}, v1alpha1.Placement{Clusters: weights(map[string]int32{"a": 1, "b": 1, "c": 1}, "a", "b", "c"),
		Spread: &v1alpha1.Spread{By: v1alpha1.SpreadByRegion, MaxSkew: 1}}, domains...)
	got := w.workload("batch", 6, "100m", "kosmos-scheduler")
	if eu, us := got["a"], got["b"]+got["c"]; eu != 3 || us != 3 {
		t.Errorf("spread by region: eu %d, us %d (%v), want 3/3", eu, us, got)
	}

	// Unmatched pods never land on virtual nodes, under either profile.
	check(t, "unmatched, kosmos profile", w.workload("plain", 6, "100m", "kosmos-scheduler"), map[string]int{"host": 6})
	check(t, "unmatched, default profile", w.workload("plain2", 4, "100m", "default-scheduler"), map[string]int{"host": 4})
}

// keepsOffFragmentedClusters (leaf fit): d is the only target. A 500m pod
// fits one of d's nodes; a 2-CPU pod fits d's aggregate but no single
// node, and stays pending.
func keepsOffFragmentedClusters(t *testing.T, w *world, domains []v1alpha1.ClusterDomain) {
	w.policy("fragmented", map[string]string{"app": "frag"}, v1alpha1.Placement{Clusters: weights(map[string]int32{"d": 1}, "d")}, domains...)
	w.create(w.pod("small", "frag", "500m", "kosmos-scheduler", nil))
	w.create(w.pod("large", "frag", "2", "kosmos-scheduler", nil))
	w.waitBound("frag", 1)
	var large corev1.Pod
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := w.c.Get(w.ctx, client.ObjectKey{Namespace: "default", Name: "large"}, &large); err != nil {
			t.Fatal(err)
		}
		if large.Spec.NodeName != "" {
			t.Fatalf("the 2-CPU pod was placed on %s, where no single node fits it", large.Spec.NodeName)
		}
		if cond := podCondition(&large, corev1.PodScheduled); cond != nil && cond.Reason == corev1.PodReasonUnschedulable {
			t.Logf("large pod: %s", cond.Message)
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the 2-CPU pod was never reported unschedulable")
		}
		<-time.After(100 * time.Millisecond)
	}
}

// followsPolicyChanges: a policy change applies to new placements: "even"
// (placesByWeight, 3 "api" pods) now sends everything to c.
func followsPolicyChanges(t *testing.T, w *world) {
	var p v1alpha1.DistributionPolicy
	if err := w.c.Get(w.ctx, client.ObjectKey{Name: "even"}, &p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Placement.Clusters = weights(map[string]int32{"c": 1}, "c")
	if err := w.c.Update(w.ctx, &p); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		// The informer catches up asynchronously: place probes until one
		// follows the new policy, then check the next ones all do.
		w.create(w.pod(fmt.Sprintf("api-new-%d", i), "api", "100m", "kosmos-scheduler", nil))
		got := w.waitBound("api", 4+i)
		if got["c"] > 0 {
			for j := 1; j <= 3; j++ {
				w.create(w.pod(fmt.Sprintf("api-after-%d", j), "api", "100m", "kosmos-scheduler", nil))
			}
			after := w.waitBound("api", 4+i+3)
			if after["c"]-got["c"] != 3 {
				t.Errorf("after the policy change, new pods went %v (before %v)", after, got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the policy change never applied: %v", got)
		}
	}
}

func podCondition(p *corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}
