package tree_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/scheduler"
	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree"
	"kosmos.io/kosmos/tree/translate"
)

// startScheduler runs the real kube-scheduler with the shipped
// kosmos-scheduler profile against the host, in this process, until ctx
// ends.
func (w *world) startScheduler(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	shipped, err := os.ReadFile(filepath.Join("..", "kustomize", "base", "scheduler", "scheduler-config.yaml"))
	must(t, err)
	var conf map[string]any
	must(t, yaml.Unmarshal(shipped, &conf))
	conf["clientConnection"] = map[string]any{"kubeconfig": w.env.KubeconfigPath, "qps": 1000, "burst": 2000}
	conf["leaderElection"] = map[string]any{"leaderElect": false}
	data, err := yaml.Marshal(conf)
	must(t, err)
	cfg := filepath.Join(t.TempDir(), "scheduler.yaml")
	must(t, os.WriteFile(cfg, data, 0o644))
	done, err := scheduler.Run(ctx, cfg)
	must(t, err)
	t.Cleanup(func() { cancel(); <-done })
}

// TestNodeGroups: a member with a GPU node group shows two virtual nodes,
// each with its own labels, taints and resources; a pod asking for a GPU
// is placed by the real kube-scheduler (kosmos-scheduler profile) on the
// GPU group's node only, and its copy runs on the member's GPU node; a
// pod asking for more GPUs than any member node has stays Pending; a pod
// of the default node is kept off the GPU node in the member.
func TestNodeGroups(t *testing.T) {
	g := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "member-g"}, Spec: v1alpha1.ClusterObjectSpec{
		PodCIDRs: []string{"10.60.0.0/16"},
		Tree: v1alpha1.TreeSpec{Mode: v1alpha1.TreeAggregate, NodeLabels: map[string]string{"kosmos.io/pool": "general"},
			NodeGroups: []v1alpha1.NodeGroup{{Name: "gpu", NodeSelector: map[string]string{"accelerator": "nvidia"},
				Labels: map[string]string{"kosmos.io/pool": "gpu"}, Taints: []v1alpha1.Taint{{Key: "nvidia.com/gpu", Value: "present", Effect: "NoSchedule"}}}}}}}
	w := newWorld(t, nil, g)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m, h := w.members["member-g"], w.hostCS
	memberNodeObj(ctx, t, m, "cpu-1", "8")
	memberNodeObj(ctx, t, m, "gpu-1", "8")
	gn, err := m.CoreV1().Nodes().Get(ctx, "gpu-1", metav1.GetOptions{})
	must(t, err)
	gn.Labels = map[string]string{"accelerator": "nvidia"}
	gn, err = m.CoreV1().Nodes().Update(ctx, gn, metav1.UpdateOptions{})
	must(t, err)
	gn.Status.Allocatable["nvidia.com/gpu"] = resource.MustParse("2")
	gn.Status.Capacity["nvidia.com/gpu"] = resource.MustParse("2")
	_, err = m.CoreV1().Nodes().UpdateStatus(ctx, gn, metav1.UpdateOptions{})
	must(t, err)
	w.run(2 * time.Second)
	w.startScheduler(t)
	step := steps(t)
	const def, gpu = "kosmos-member-g", "kosmos-member-g.gpu.group"

	step("two virtual nodes, each with its own labels and taints", func(t *testing.T) {
		waitFor(t, "both virtual nodes Ready", func() error {
			for _, n := range []string{def, gpu} {
				if err := wantReady(ctx, h, n, corev1.ConditionTrue)(); err != nil {
					return err
				}
			}
			return nil
		})
		for name, want := range map[string]struct {
			pool, gpus string
			taint      bool
		}{def: {"general", "", false}, gpu: {"gpu", "2", true}} {
			n, err := h.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			must(t, err)
			q, has := n.Status.Allocatable["nvidia.com/gpu"]
			if n.Labels["kosmos.io/pool"] != want.pool || (want.gpus == "") == has || (has && q.String() != want.gpus) {
				t.Errorf("%s: pool label %q, nvidia.com/gpu %v %s", name, n.Labels["kosmos.io/pool"], has, q.String())
			}
			tainted := false
			for _, taint := range n.Spec.Taints {
				tainted = tainted || taint.Key == "nvidia.com/gpu"
			}
			if tainted != want.taint {
				t.Errorf("%s: taints %v", name, n.Spec.Taints)
			}
		}
		// The API server taints new nodes not-ready; with no node lifecycle
		// controller here, the test lifts it as that controller would.
		for _, name := range []string{def, gpu} {
			waitFor(t, "lift not-ready from "+name, func() error {
				n, err := h.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == corev1.TaintNodeNotReady })
				_, err = h.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
				return err
			})
		}
		t.Logf("virtual nodes %s and %s", def, gpu)
	})

	_, err = h.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ml"}}, metav1.CreateOptions{})
	must(t, err)
	_, err = h.CoreV1().ServiceAccounts("ml").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	must(t, err)
	gpuPod := func(name, gpus string) *corev1.Pod {
		no := false
		res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), "nvidia.com/gpu": resource.MustParse(gpus)}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: name}, Spec: corev1.PodSpec{
			SchedulerName: "kosmos-scheduler", AutomountServiceAccountToken: &no,
			Tolerations: []corev1.Toleration{{Key: tree.TaintLeaf, Operator: corev1.TolerationOpExists}, {Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists}},
			Containers:  []corev1.Container{{Name: "train", Image: "ml/train:1", Resources: corev1.ResourceRequirements{Requests: res, Limits: res}}}}}
	}

	step("a GPU pod lands on the GPU group's node and runs on the member's GPU node", func(t *testing.T) {
		_, err := h.CoreV1().Pods("ml").Create(ctx, gpuPod("train-0", "1"), metav1.CreateOptions{})
		must(t, err)
		waitFor(t, "train-0 bound", func() error {
			p, err := h.CoreV1().Pods("ml").Get(ctx, "train-0", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.Spec.NodeName == "" {
				return fmt.Errorf("not bound yet: %v", p.Status.Conditions)
			}
			if p.Spec.NodeName != gpu {
				t.Fatalf("train-0 bound to %s, want %s", p.Spec.NodeName, gpu)
			}
			return nil
		})
		var mp *corev1.Pod
		waitFor(t, "train-0's copy in the member", func() error {
			mp, err = m.CoreV1().Pods("ml").Get(ctx, "train-0", metav1.GetOptions{})
			return err
		})
		if mp.Spec.NodeSelector["accelerator"] != "nvidia" {
			t.Errorf("copy's node selector %v: it could land off the GPU nodes", mp.Spec.NodeSelector)
		}
		must(t, runPod(ctx, m, mp, "gpu-1", "10.60.1.5"))
		waitFor(t, "train-0 Running in the host", func() error {
			p, err := h.CoreV1().Pods("ml").Get(ctx, "train-0", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.Status.Phase != corev1.PodRunning {
				return fmt.Errorf("phase %s", p.Status.Phase)
			}
			return nil
		})
	})

	step("a pod asking more GPUs than a member node has stays Pending", func(t *testing.T) {
		_, err := h.CoreV1().Pods("ml").Create(ctx, gpuPod("train-big", "3"), metav1.CreateOptions{})
		must(t, err)
		waitFor(t, "train-big found unschedulable", func() error {
			p, err := h.CoreV1().Pods("ml").Get(ctx, "train-big", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.Spec.NodeName != "" {
				t.Fatalf("train-big bound to %s", p.Spec.NodeName)
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
					t.Logf("train-big: %s", c.Message)
					return nil
				}
			}
			return fmt.Errorf("conditions %v", p.Status.Conditions)
		})
	})

	step("a pod of the default node is kept off the GPU node in the member", func(t *testing.T) {
		p := gpuPod("web-0", "0")
		p.Spec.NodeName, p.Spec.SchedulerName = def, ""
		p.Spec.Containers[0].Resources = corev1.ResourceRequirements{}
		_, err := h.CoreV1().Pods("ml").Create(ctx, p, metav1.CreateOptions{})
		must(t, err)
		var mp *corev1.Pod
		waitFor(t, "web-0's copy in the member", func() error {
			mp, err = m.CoreV1().Pods("ml").Get(ctx, "web-0", metav1.GetOptions{})
			return err
		})
		a := mp.Spec.Affinity
		if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
			t.Fatalf("web-0's copy has no required node affinity: %+v", a)
		}
		terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		if len(terms) != 1 || len(terms[0].MatchExpressions) != 1 || terms[0].MatchExpressions[0].Key != "accelerator" || terms[0].MatchExpressions[0].Operator != corev1.NodeSelectorOpNotIn {
			t.Errorf("web-0's copy terms %+v", terms)
		}
		if mp.Annotations[translate.AnnotationVirtualNode] != def {
			t.Errorf("web-0's copy annotations %v", mp.Annotations)
		}
	})
}
