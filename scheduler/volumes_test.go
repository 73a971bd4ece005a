package scheduler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/scheduler"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestSchedulerPlacesUnboundClaimsOnMembers: with the real kube-scheduler
// and the shipped kosmos-scheduler profile, a pod whose claim is unbound
// goes to the virtual node whose member offers the claim's class, and to
// no other: WaitForFirstConsumer (a class the host also has) and
// Immediate (a class the host lacks) alike. A class no member offers
// keeps the pod Pending with the reason, until a member offers it.
func TestSchedulerPlacesUnboundClaimsOnMembers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newWorld(t, ctx)
	roomy := []v1alpha1.FreeNode{{CPUMilli: 16000, MemoryBytes: 64 << 30, Pods: 100}}
	w.node("kosmos-a", "a", "eu", "64", roomy)
	w.node("kosmos-b", "b", "us", "64", roomy)
	w.offer("kosmos-a", "fast")
	w.offer("kosmos-b", "slow,standard")
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	w.create(&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Provisioner: "example.com/nothing-in-the-host", VolumeBindingMode: &wffc})

	w.create(w.claim("data-wffc", "fast"))
	w.create(w.claimPod("wffc", "data-wffc"))
	w.create(w.claim("data-immediate", "slow"))
	w.create(w.claimPod("immediate", "data-immediate"))
	w.create(w.claim("data-gold", "gold"))
	w.create(w.claimPod("gold", "data-gold"))

	took := map[string]time.Duration{}
	took["wffc"] = poll.Until(t, 60*time.Second, "pod wffc bound to kosmos-a", func() bool { return w.boundTo("wffc") == "kosmos-a" })
	took["immediate"] = poll.Until(t, 60*time.Second, "pod immediate bound to kosmos-b", func() bool { return w.boundTo("immediate") == "kosmos-b" })
	poll.Until(t, 60*time.Second, "pod gold refused for its class", func() bool {
		var p corev1.Pod
		_ = w.c.Get(w.ctx, client.ObjectKey{Namespace: "default", Name: "gold"}, &p)
		c := podCondition(&p, corev1.PodScheduled)
		return c != nil && c.Status == corev1.ConditionFalse && strings.Contains(c.Message, `offers no storage class "gold"`)
	})
	if n := w.boundTo("gold"); n != "" {
		t.Fatalf("pod gold bound to %s, whose member does not offer its class", n)
	}
	w.offer("kosmos-a", "fast,gold")
	took["gold"] = poll.Until(t, 60*time.Second, "pod gold bound to kosmos-a once a offers gold", func() bool { return w.boundTo("gold") == "kosmos-a" })
	t.Logf("time to bind: %v", took)
	for _, name := range []string{"data-wffc", "data-immediate"} {
		var c corev1.PersistentVolumeClaim
		if err := w.c.Get(w.ctx, client.ObjectKey{Namespace: "default", Name: name}, &c); err != nil {
			t.Fatal(err)
		}
		if c.Spec.VolumeName != "" || c.Annotations["volume.kubernetes.io/selected-node"] != "" {
			t.Errorf("claim %s was touched by the host's binder: volumeName %q, annotations %v", name, c.Spec.VolumeName, c.Annotations)
		}
	}
}

// offer sets the storage classes a virtual node's member offers, as the
// tree does.
func (w *world) offer(node, classes string) {
	w.t.Helper()
	var n corev1.Node
	if err := w.c.Get(w.ctx, client.ObjectKey{Name: node}, &n); err != nil {
		w.t.Fatal(err)
	}
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	n.Annotations[v1alpha1.AnnotationStorageClasses] = classes
	if err := w.c.Update(w.ctx, &n); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) claim(name, class string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &class, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
}

// claimPod is a kosmos-scheduler pod that mounts claim and tolerates the
// virtual nodes' taint (no policy in this test).
func (w *world) claimPod(name, claim string) *corev1.Pod {
	p := w.pod(name, "claims", "100m", "kosmos-scheduler", nil)
	p.Spec.Tolerations = []corev1.Toleration{{Key: scheduler.TaintLeaf, Operator: corev1.TolerationOpExists}}
	p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}}
	return p
}

func (w *world) boundTo(pod string) string {
	var p corev1.Pod
	if err := w.c.Get(w.ctx, client.ObjectKey{Namespace: "default", Name: pod}, &p); err != nil {
		w.t.Fatal(fmt.Errorf("pod %s: %w", pod, err))
	}
	return p.Spec.NodeName
}
