package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kosmos.io/kosmos/tree"
)

// benchTopology: a host and two Aggregate members (two machines each, 110
// pods per machine), without a data plane.
const benchTopology = `apiVersion: kosmos.io/v1alpha1
kind: KosmosTopology
metadata: {name: bench}
spec:
  clusters:
    - name: host
      role: host
      kubeconfig: {secretRef: {name: kubeconfig-host}, context: host}
      network: {podCIDRs: [10.10.0.0/16], serviceCIDRs: [10.11.0.0/16]}
    - name: member-a
      role: member
      kubeconfig:
        secretRef: {name: kubeconfig-member-a}
        treeSecretRef: {name: kubeconfig-member-a, namespace: kosmos-tree}
        context: member-a
      network: {podCIDRs: [10.244.0.0/16], serviceCIDRs: [10.96.0.0/16]}
      tree: {mode: Aggregate}
    - name: member-b
      role: member
      kubeconfig:
        secretRef: {name: kubeconfig-member-b}
        treeSecretRef: {name: kubeconfig-member-b, namespace: kosmos-tree}
        context: member-b
      network: {podCIDRs: [10.245.0.0/16], serviceCIDRs: [10.97.0.0/16]}
      tree: {mode: Aggregate}
`

const benchReplicas = 100

// BenchmarkStatefulSetVsDeployment: in the sandbox (real API servers,
// kube-controller-manager, kube-scheduler with the kosmos-scheduler
// profile, the tree, the members' host-path provisioner and simulated
// kubelets), the time from creating a workload of 100 replicas in the host
// until all 100 host pods are Running (on the members' virtual nodes, their
// copies Running there):
//   - deployment-s: a Deployment of 100 (the baseline, same run);
//   - statefulset-s: a StatefulSet of 100, podManagementPolicy Parallel,
//     one claim per pod (the members' WaitForFirstConsumer class, which
//     the host does not have): each claim is created in the member, bound
//     by its provisioner, reflected and bound in the host;
//   - ratio: statefulset-s / deployment-s.
//
// Parallel, not OrderedReady: the figure is the cost of claims through
// the tree, not of starting 100 pods one after the other.
func BenchmarkStatefulSetVsDeployment(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir := b.TempDir()
	topo := filepath.Join(dir, "topology.yaml")
	if err := os.WriteFile(topo, []byte(benchTopology), 0o644); err != nil {
		b.Fatal(err)
	}
	sb, err := Start(ctx, Options{Topology: topo, Dir: filepath.Join(dir, "state"),
		SchedulerConfig: filepath.Join("..", "..", "kustomize", "base", "scheduler", "scheduler-config.yaml")})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sb.Stop() }()
	if err := sb.FirstApply(ctx, os.Stderr); err != nil {
		b.Fatal(err)
	}
	if err := sb.StartControllers(); err != nil {
		b.Fatal(err)
	}
	host := kubernetes.NewForConfigOrDie(sb.Env.Cluster("host").Config)
	members := map[string]kubernetes.Interface{}
	for _, m := range []string{"member-a", "member-b"} {
		members[m] = kubernetes.NewForConfigOrDie(sb.Env.Cluster(m).Config)
	}
	// Only the two workloads' runs are timed (creation until all Running).
	b.ResetTimer()
	b.StopTimer()
	for i := range b.N {
		ns := fmt.Sprintf("bench-%d", i)
		if _, err := host.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		replicas := int32(benchReplicas)
		template := func(app string) corev1.PodTemplateSpec {
			var mounts []corev1.VolumeMount
			if app == "db" {
				mounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
			}
			return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}}, Spec: corev1.PodSpec{
				SchedulerName: "kosmos-scheduler",
				Tolerations:   []corev1.Toleration{{Key: tree.TaintLeaf, Operator: corev1.TolerationOpExists}},
				// On the members' virtual nodes, not the host's machines.
				Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: tree.LabelCluster, Operator: corev1.NodeSelectorOpExists}}}}}}},
				Containers: []corev1.Container{{Name: app, Image: app + ":1", VolumeMounts: mounts}}}}
		}
		b.StartTimer()
		start := time.Now()
		_, err := host.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{
			Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: template("web")}}, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		deployment := awaitRunning(ctx, b, host, members, ns, "web", benchReplicas, start)
		b.StopTimer()

		// The Deployment goes first, so both runs start from the same load.
		zero := int64(0)
		if err := host.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		_ = host.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{LabelSelector: "app=web"})
		awaitGone(ctx, b, host, ns, "web")
		for _, m := range members { // their copies too: the members' load is part of the figure
			awaitGone(ctx, b, m, ns, "web")
		}

		b.StartTimer()
		class := StorageClassWFFC
		start = time.Now()
		_, err = host.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas, ServiceName: "db", PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, Template: template("db"),
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{
				StorageClassName: &class, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}}}},
			metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		statefulSet := awaitRunning(ctx, b, host, members, ns, "db", benchReplicas, start)
		b.StopTimer()
		bound := awaitClaimsBound(ctx, b, host, ns, benchReplicas)
		b.ReportMetric(deployment.Seconds(), "deployment-s")
		b.ReportMetric(statefulSet.Seconds(), "statefulset-s")
		b.ReportMetric(statefulSet.Seconds()/deployment.Seconds(), "ratio")
		b.ReportMetric(float64(bound), "host-claims-bound")
	}
}

// awaitClaimsBound polls until n host claims in ns are Bound (the tree
// binds a host claim once its member copy is bound; its pod may run
// before) and returns how many are; fatal after 2 minutes with fewer.
func awaitClaimsBound(ctx context.Context, b *testing.B, host kubernetes.Interface, ns string, n int) int {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		bound := 0
		claims, err := host.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, c := range claims.Items {
				if c.Status.Phase == corev1.ClaimBound {
					bound++
				}
			}
		}
		if bound == n {
			return bound
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: %d of %d host claims Bound after 2 minutes (%v)", ns, bound, n, err)
		}
		select {
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// awaitRunning polls until n host pods of app in ns are Running, each on a
// member's virtual node with its copy Running, and returns the time since
// start (fatal after 10 minutes).
func awaitRunning(ctx context.Context, b *testing.B, host kubernetes.Interface, members map[string]kubernetes.Interface, ns, app string, n int, start time.Time) time.Duration {
	b.Helper()
	last := ""
	for {
		got, err := runningOnMembers(ctx, host, members, ns, app)
		if err == nil && got == n {
			return time.Since(start)
		}
		last = fmt.Sprintf("%d running (%v)", got, err)
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("%s/%s: not %d pods Running in the members after 10 minutes: %s", ns, app, n, last)
		}
		select {
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// runningOnMembers counts the host pods of app in ns that are Running on a
// virtual node whose member copy runs too.
func runningOnMembers(ctx context.Context, host kubernetes.Interface, members map[string]kubernetes.Interface, ns, app string) (int, error) {
	pods, err := host.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return 0, err
	}
	copies := map[string]bool{}
	for name, m := range members {
		mp, err := m.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		for _, p := range mp.Items {
			if p.Status.Phase == corev1.PodRunning {
				copies[p.Name] = true
			}
		}
	}
	n := 0
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && copies[p.Name] {
			n++
		}
	}
	return n, nil
}

// awaitGone polls until no pod of app is left in ns of cluster cs (the host or a member).
func awaitGone(ctx context.Context, b *testing.B, host kubernetes.Interface, ns, app string) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		pods, err := host.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err == nil && len(pods.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s/%s: pods left after 5 minutes (%v)", ns, app, err)
		}
		select {
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
