package tree_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/testinfra/testenv"
	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree"
)

func makeReady(ctx context.Context, t *testing.T, c client.Client, name, cpu string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")}
	n.Status = corev1.NodeStatus{Allocatable: res, Capacity: res, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}
	if err := c.Status().Update(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// TestVirtualNodeFollowsMember: a host and a member, real control planes.
// The Cluster object makes a virtual node whose allocatable follows the
// member's nodes; removing the Cluster removes it, and a node Kosmos did not
// create is never touched.
func TestVirtualNodeFollowsMember(t *testing.T) {
	env := testenv.StartT(t, testenv.Options{Names: []string{"host", "member"}, CRDDirs: []string{filepath.Join("..", "kustomize", "base", "crds")}})
	s, err := reconciler.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	host, err := client.New(env.Cluster("host").Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	member, err := client.New(env.Cluster("member").Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := host.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kosmos-system"}}); err != nil {
		t.Fatal(err)
	}
	kc, err := env.KubeconfigFor("member")
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kosmos-system", Name: "kubeconfig-member"}, Data: map[string][]byte{"kubeconfig": kc}}); err != nil {
		t.Fatal(err)
	}
	makeReady(ctx, t, member, "m1", "4")
	makeReady(ctx, t, member, "m2", "2")
	// A host node that merely looks like a virtual node: never touched.
	stranger := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kosmos-stranger", Labels: map[string]string{tree.LabelCluster: "gone"}}}
	if err := host.Create(ctx, stranger); err != nil {
		t.Fatal(err)
	}
	cl := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member"}, Spec: v1alpha1.ClusterObjectSpec{
		Kubeconfig: v1alpha1.SecretKeyRef{Name: "kubeconfig-member", Namespace: "kosmos-system"}, Region: "eu-west",
		Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate},
	}}
	if err := host.Create(ctx, cl); err != nil {
		t.Fatal(err)
	}

	passes := make(chan error, 100)
	ctl := &tree.Controller{Host: host, Config: env.Cluster("host").Config, Namespace: "kosmos-system", Interval: 200 * time.Millisecond,
		Log:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnPass: func(err error) { passes <- err }}
	done := make(chan struct{})
	go func() { defer close(done); _ = ctl.Run(ctx) }()
	defer func() { cancel(); <-done }()

	cpuOf := func() (string, bool) {
		var n corev1.Node
		if host.Get(ctx, client.ObjectKey{Name: "kosmos-member"}, &n) != nil {
			return "", false
		}
		return n.Status.Allocatable.Cpu().String(), true
	}
	wait := func(t *testing.T, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			select {
			case err := <-passes:
				if err != nil {
					t.Logf("pass: %v", err)
				}
			case <-time.After(time.Second):
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	step := steps(t)
	step("the virtual node with the member's room, labels and taint", func(t *testing.T) {
		wait(t, "the virtual node with 6 CPUs", func() bool { c, ok := cpuOf(); return ok && c == "6" })
		var vn corev1.Node
		if err := host.Get(ctx, client.ObjectKey{Name: "kosmos-member"}, &vn); err != nil {
			t.Fatal(err)
		}
		if vn.Labels[tree.LabelCluster] != "member" || vn.Labels[corev1.LabelTopologyRegion] != "eu-west" || vn.Annotations[v1alpha1.AnnotationFreeResources] == "" {
			t.Errorf("virtual node metadata: %v %v", vn.Labels, vn.Annotations)
		}
		if len(vn.Spec.Taints) == 0 || vn.Spec.Taints[0].Key != tree.TaintLeaf {
			t.Errorf("taints: %v", vn.Spec.Taints)
		}
	})

	step("labels: the tree's own that it dropped go, others' stay", func(t *testing.T) {
		// A label dropped from the Cluster goes from the node; a label someone
		// else put on the node stays.
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := host.Get(ctx, client.ObjectKeyFromObject(cl), cl); err != nil {
				return err
			}
			cl.Spec.Labels = map[string]string{"tier": "gold"}
			return host.Update(ctx, cl)
		}); err != nil {
			t.Fatal(err)
		}
		wait(t, "the tier label", func() bool {
			var n corev1.Node
			return host.Get(ctx, client.ObjectKey{Name: "kosmos-member"}, &n) == nil && n.Labels["tier"] == "gold"
		})
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error { // the tree writes the node too
			var labelled corev1.Node
			if err := host.Get(ctx, client.ObjectKey{Name: "kosmos-member"}, &labelled); err != nil {
				return err
			}
			labelled.Labels["team"] = "ops" // not the tree's
			return host.Update(ctx, &labelled)
		}); err != nil {
			t.Fatal(err)
		}
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error { // the tree writes the Cluster's status meanwhile
			if err := host.Get(ctx, client.ObjectKeyFromObject(cl), cl); err != nil {
				return err
			}
			cl.Spec.Labels = nil
			return host.Update(ctx, cl)
		}); err != nil {
			t.Fatal(err)
		}
		wait(t, "the tier label to go, the team label to stay", func() bool {
			var n corev1.Node
			return host.Get(ctx, client.ObjectKey{Name: "kosmos-member"}, &n) == nil && n.Labels["tier"] == "" && n.Labels["team"] == "ops"
		})
	})

	step("a member node joins: the node grows", func(t *testing.T) {
		// A member node joins: the aggregate grows.
		makeReady(ctx, t, member, "m3", "8")
		wait(t, "the virtual node to grow to 14 CPUs", func() bool { c, _ := cpuOf(); return c == "14" })
	})

	step("a pod of the member's own takes room", func(t *testing.T) {
		// A pod of the member's own starts running on m3: the room it takes is
		// no longer the host's.
		own := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "own"}, Spec: corev1.PodSpec{NodeName: "m3",
			Containers: []corev1.Container{{Name: "c", Image: "x", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3")}}}}}}
		if err := member.Create(ctx, own); err != nil {
			t.Fatal(err)
		}
		own.Status.Phase = corev1.PodRunning
		if err := member.Status().Update(ctx, own); err != nil {
			t.Fatal(err)
		}
		wait(t, "the virtual node to shrink to 11 CPUs", func() bool { c, _ := cpuOf(); return c == "11" })
	})

	step("the member's storage classes are published on its node", func(t *testing.T) {
		classesOf := func() string {
			var n corev1.Node
			if host.Get(ctx, client.ObjectKey{Name: "kosmos-member"}, &n) != nil {
				return "?"
			}
			return n.Annotations[v1alpha1.AnnotationStorageClasses]
		}
		classes := kubernetes.NewForConfigOrDie(env.Cluster("member").Config).StorageV1().StorageClasses()
		wffc := storagev1.VolumeBindingWaitForFirstConsumer
		for _, name := range []string{"slow", "fast"} {
			if _, err := classes.Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "example.com/p", VolumeBindingMode: &wffc}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		wait(t, "the classes fast,slow on the node", func() bool { return classesOf() == "fast,slow" })
		if err := classes.Delete(ctx, "slow", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		wait(t, "the class slow to go from the node", func() bool { return classesOf() == "fast" })
	})

	step("the cluster leaves: its node goes, the stranger stays", func(t *testing.T) {
		// The cluster leaves the topology: its virtual node goes; the stranger stays.
		if err := host.Delete(ctx, cl); err != nil {
			t.Fatal(err)
		}
		wait(t, "the virtual node to be removed", func() bool { _, ok := cpuOf(); return !ok })
		if err := host.Get(ctx, client.ObjectKeyFromObject(stranger), &corev1.Node{}); err != nil {
			t.Errorf("a node Kosmos did not create was touched: %v", err)
		}
	})
}
