package sandbox

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"kosmos.io/kosmos/tree"
)

// statefulSetWithClaims: a StatefulSet in the host with two
// volumeClaimTemplates (the members' WaitForFirstConsumer class and their
// Immediate class, neither of which the host has) and 3 replicas, placed
// by kosmos-scheduler on virtual nodes with no nodeName set by hand. Every
// claim ends Bound in the member of its pod (the sandbox's provisioner and
// the member's kube-controller-manager) and in the host (to the tree's
// reflection of the member's volume); scaled to 1 and back to 3, the pods
// come back to the same claims and volumes, in the same clusters.
func statefulSetWithClaims(ctx context.Context, t *testing.T, host kubernetes.Interface, members map[string]kubernetes.Interface) {
	t.Helper()
	start := time.Now()
	defer func() {
		t.Logf("StatefulSet with claims: placed, scaled to 1 and back in %s", time.Since(start).Round(10*time.Millisecond))
	}()
	replicas := int32(3)
	labels := map[string]string{"app": "db"}
	claim := func(name, class string) corev1.PersistentVolumeClaim {
		return corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	}
	_, err := host.AppsV1().StatefulSets("shop").Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{Replicas: &replicas, ServiceName: "db", PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				SchedulerName: "kosmos-scheduler",
				Tolerations:   []corev1.Toleration{{Key: tree.TaintLeaf, Operator: corev1.TolerationOpExists}},
				Containers: []corev1.Container{{Name: "db", Image: "postgres:17", VolumeMounts: []corev1.VolumeMount{
					{Name: "data", MountPath: "/var/lib/postgresql"}, {Name: "log", MountPath: "/var/log/db"}}}}}},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{claim("data", StorageClassWFFC), claim("log", StorageClassImmediate)},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := waitStatefulSet(ctx, t, host, members, 3)
	t.Logf("claims of db: %s", strings.Join(first, "; "))

	scale := func(n int32) {
		t.Helper()
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			s, err := host.AppsV1().StatefulSets("shop").Get(ctx, "db", metav1.GetOptions{})
			if err != nil {
				return err
			}
			s.Spec.Replicas = &n
			_, err = host.AppsV1().StatefulSets("shop").Update(ctx, s, metav1.UpdateOptions{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	scale(1)
	waitStatefulSet(ctx, t, host, members, 1)
	scale(3)
	again := waitStatefulSet(ctx, t, host, members, 3)
	if strings.Join(again, "; ") != strings.Join(first, "; ") {
		t.Errorf("scaled to 1 and back, the claims changed:\nbefore %s\nafter  %s", strings.Join(first, "; "), strings.Join(again, "; "))
	}
}

// waitStatefulSet waits until db has exactly n pods, each Running on a
// virtual node with its member copy Running, and each of their claims
// Bound in the host and in that member. It returns, sorted, one line per
// claim: name, host UID, host volume, cluster, member volume.
func waitStatefulSet(ctx context.Context, t *testing.T, host kubernetes.Interface, members map[string]kubernetes.Interface, n int) []string {
	t.Helper()
	var last string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got, err := statefulSetState(ctx, host, members, n)
		if err == nil {
			return got
		}
		last = err.Error()
		if time.Now().After(deadline) {
			t.Fatalf("StatefulSet db never had %d pods Running with claims bound: %s\n%s", n, last, dump(ctx, host))
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func statefulSetState(ctx context.Context, host kubernetes.Interface, members map[string]kubernetes.Interface, n int) ([]string, error) {
	pods, err := host.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{LabelSelector: "app=db"})
	if err != nil {
		return nil, err
	}
	if len(pods.Items) != n {
		return nil, fmt.Errorf("%d pods", len(pods.Items))
	}
	var out []string
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning {
			return nil, fmt.Errorf("pod %s on %q is %s", p.Name, p.Spec.NodeName, p.Status.Phase)
		}
		node, err := host.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		cl := node.Labels[tree.LabelCluster]
		m, ok := members[cl]
		if !ok {
			return nil, fmt.Errorf("pod %s is on %s, not a member's virtual node", p.Name, p.Spec.NodeName)
		}
		if mp, err := m.CoreV1().Pods("shop").Get(ctx, p.Name, metav1.GetOptions{}); err != nil || mp.Status.Phase != corev1.PodRunning {
			return nil, fmt.Errorf("pod %s not running in %s (%v)", p.Name, cl, err)
		}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim == nil {
				continue
			}
			name := v.PersistentVolumeClaim.ClaimName
			hc, err := host.CoreV1().PersistentVolumeClaims("shop").Get(ctx, name, metav1.GetOptions{})
			if err != nil || hc.Status.Phase != corev1.ClaimBound {
				return nil, fmt.Errorf("host claim %s not bound (%v)", name, err)
			}
			mc, err := m.CoreV1().PersistentVolumeClaims("shop").Get(ctx, name, metav1.GetOptions{})
			if err != nil || mc.Status.Phase != corev1.ClaimBound {
				return nil, fmt.Errorf("claim %s not bound in %s (%v)", name, cl, err)
			}
			out = append(out, fmt.Sprintf("%s uid=%s host-volume=%s cluster=%s member-volume=%s", name, hc.UID, hc.Spec.VolumeName, cl, mc.Spec.VolumeName))
		}
	}
	sort.Strings(out)
	return out, nil
}
