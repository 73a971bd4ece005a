// This file holds the pod sync's two seams, after virtual-kubelet's
// node/podcontroller.go: the member's pods (MemberPods) and the host's
// (HostPods). The handlers of podsync.go reach either cluster's pods only
// through them; memberPodClient and hostPodClient are the implementations
// over informer caches and clientsets.

package tree

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// MemberPods is the pod sync's seam to the pods of one member cluster.
//
// Pods returned by Pod come from an informer cache and are shared: callers
// must not modify them (DeepCopy first). Pods returned by LivePod are the
// caller's. Pods passed to CreatePod and UpdatePod are neither modified
// nor retained. All methods are safe for concurrent use by the sync's
// workers; none retries.
type MemberPods interface {
	// Pod returns the member's pod namespace/name from the cache, or nil.
	Pod(namespace, name string) *corev1.Pod
	// LivePod reads the pod from the member's API server, past the cache:
	// nil when it does not exist. Used before acting on a copy's absence.
	LivePod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
	// CreatePod creates pod in the member.
	CreatePod(ctx context.Context, pod *corev1.Pod) error
	// UpdatePod writes pod's spec and metadata (resourceVersion as given).
	UpdatePod(ctx context.Context, pod *corev1.Pod) error
	// DeletePod deletes the pod if its UID is still uid, with the grace
	// period given (nil: the pod's own); a pod already gone is no error.
	DeletePod(ctx context.Context, namespace, name string, uid types.UID, grace *int64) error
}

// HostPods is the pod sync's seam to the host cluster: its pods, bound to
// virtual nodes, and the virtual nodes they are bound to.
//
// The same sharing rules as MemberPods hold: pods from Pod are the
// cache's and read-only; pods passed in are neither modified nor retained;
// all methods are safe for concurrent use by every member's workers.
type HostPods interface {
	// Pod returns the host's pod namespace/name from the cache (pods bound
	// to some node only), or nil.
	Pod(namespace, name string) *corev1.Pod
	// ClusterOf is the member behind virtual node node: "" when node is
	// empty or not a virtual node the cache shows.
	ClusterOf(node string) string
	// MemberNodeOf is the member node the OneToOne virtual node node
	// mirrors, "" when none.
	MemberNodeOf(node string) string
	// UpdateStatus writes pod's status (resourceVersion as given).
	UpdateStatus(ctx context.Context, pod *corev1.Pod) error
	// DeletePod deletes the host pod if its UID is still uid, with the
	// grace period given.
	DeletePod(ctx context.Context, namespace, name string, uid types.UID, grace *int64) error
	// Event records an event on a host pod (and logs it).
	Event(pod *corev1.Pod, typ, reason, msg string)
}

var (
	_ MemberPods = memberPodClient{}
	_ HostPods   = hostPodClient{}
)

// memberPodClient is MemberPods over a member's pod cache and clientset.
type memberPodClient struct {
	cs     kubernetes.Interface
	lister corelisters.PodLister
}

func (m memberPodClient) Pod(namespace, name string) *corev1.Pod {
	p, err := m.lister.Pods(namespace).Get(name)
	if err != nil {
		return nil
	}
	return p
}

func (m memberPodClient) LivePod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	p, err := m.cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return p, err
}

func (m memberPodClient) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	_, err := m.cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{FieldManager: FieldManager})
	return err
}

func (m memberPodClient) UpdatePod(ctx context.Context, pod *corev1.Pod) error {
	_, err := m.cs.CoreV1().Pods(pod.Namespace).Update(ctx, pod, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

func (m memberPodClient) DeletePod(ctx context.Context, namespace, name string, uid types.UID, grace *int64) error {
	err := m.cs.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: grace, Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// hostPodClient is HostPods over the controller's host caches and
// clientset; it is used only once they exist (startHost).
type hostPodClient struct{ c *Controller }

func (h hostPodClient) Pod(namespace, name string) *corev1.Pod { return h.c.hostPod(namespace, name) }
func (h hostPodClient) ClusterOf(node string) string           { return h.c.clusterOfNode(node) }
func (h hostPodClient) MemberNodeOf(node string) string        { return h.c.memberNodeOf(node) }

func (h hostPodClient) UpdateStatus(ctx context.Context, pod *corev1.Pod) error {
	_, err := h.c.hostCS.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

func (h hostPodClient) DeletePod(ctx context.Context, namespace, name string, uid types.UID, grace *int64) error {
	return h.c.hostCS.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: grace, Preconditions: &metav1.Preconditions{UID: &uid}})
}

func (h hostPodClient) Event(pod *corev1.Pod, typ, reason, msg string) {
	h.c.event(pod, typ, reason, msg)
}
