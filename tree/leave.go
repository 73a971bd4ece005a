// This file is how a cluster leaves the tree without any pod running twice.
//
// A cluster leaves when its Cluster object is deleted (the reconciler
// prunes it) or its tree is disabled. Deleting its virtual nodes at once
// would let the host delete their pods while the member copies keep
// running, and a StatefulSet would start the same pod again elsewhere. So
// the tree holds every Cluster object it serves with the finalizer
// v1alpha1.FinalizerTreeDrain and, when the cluster leaves:
//
//  1. cordons each of its virtual nodes (spec.unschedulable, marked with
//     translate.AnnotationCordoned so that only the tree's own cordon is
//     ever lifted);
//  2. evicts the host pods bound to them through the Eviction API, so
//     PodDisruptionBudgets apply (a refused eviction is tried again on the
//     next pass); DaemonSet pods are left to their controller;
//  3. keeps the member connected: an evicted host pod is terminating, the
//     pod sync deletes its copy with the pod's grace period and releases
//     the host pod only once the copy is gone, as a kubelet would (a member
//     that does not answer holds the pod, and the node, until it does);
//  4. deletes a virtual node (UID precondition) only when no pod is left
//     on it; then collects the dependency copies in the member, releases
//     the finalizer and drops the member's sync.
//
// A node a OneToOne member no longer has is drained the same way.

package tree

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree/translate"
)

// leaving tells whether cl is leaving the tree: deleted, or its tree
// disabled.
func leaving(cl *v1alpha1.Cluster) bool {
	return cl.DeletionTimestamp != nil || (cl.Spec.Tree.Enabled != nil && !*cl.Spec.Tree.Enabled)
}

// hold puts the drain finalizer on a Cluster object the tree serves; cl
// becomes the object as written.
func (c *Controller) hold(ctx context.Context, cl *v1alpha1.Cluster) error {
	if slices.Contains(cl.Finalizers, v1alpha1.FinalizerTreeDrain) {
		return nil
	}
	up := cl.DeepCopy()
	up.Finalizers = append(up.Finalizers, v1alpha1.FinalizerTreeDrain)
	switch err := c.Host.Patch(ctx, up, client.MergeFromWithOptions(cl, client.MergeFromWithOptimisticLock{})); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("add finalizer %s: %w", v1alpha1.FinalizerTreeDrain, err)
	}
	*cl = *up
	return nil
}

// passLeaving keeps a leaving cluster's member connected while its virtual
// nodes drain (draining: the host still has some), so that the copies of
// evicted pods end in the member; once none is left it collects the
// dependency copies and releases the Cluster object.
func (c *Controller) passLeaving(ctx context.Context, cl *v1alpha1.Cluster, draining bool) error {
	if draining {
		if m := c.member(cl.Name); m != nil { // keep it: its Secret may be gone already
			if err := m.probe(ctx, 5*time.Second); err != nil {
				m.down.Store(true)
				return fmt.Errorf("leaving, its pods cannot end in the member yet: %w", err)
			}
			m.down.Store(false)
			return nil
		}
		if _, err := c.reach(ctx, cl); err != nil {
			return fmt.Errorf("leaving, its pods cannot end in the member yet: %w", err)
		}
		return nil
	}
	if !slices.Contains(cl.Finalizers, v1alpha1.FinalizerTreeDrain) {
		return nil
	}
	if m := c.member(cl.Name); m != nil {
		if err := errors.Join(m.removeDaemonSets(ctx), m.collect(ctx)); err != nil {
			c.Log.Warn("left the tree; some copies in the member could not be collected", "cluster", cl.Name, "err", err)
		}
	}
	up := cl.DeepCopy()
	up.Finalizers = slices.DeleteFunc(up.Finalizers, func(f string) bool { return f == v1alpha1.FinalizerTreeDrain })
	if err := c.Host.Patch(ctx, up, client.MergeFromWithOptions(cl, client.MergeFromWithOptimisticLock{})); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("remove finalizer %s: %w", v1alpha1.FinalizerTreeDrain, err)
	}
	c.Log.Info("cluster left the tree", "cluster", cl.Name)
	return nil
}

// fail records an error of one cluster's pass that keeps nothing.
func (r *passResult) fail(cluster string, err error) {
	if err == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Errorf("cluster %s: %w", cluster, err))
}

// renamed tells whether virtual node n stands for a member node that a
// node of another name (the current naming) stands for now: a node an
// earlier version named. Its pods keep running where they are; only new
// pods go to the new node.
func renamed(n *corev1.Node, want map[string]bool) bool {
	cluster, member := n.Labels[LabelCluster], n.Labels[translate.LabelMemberNode]
	if cluster == "" || member == "" {
		return false
	}
	now := translate.VirtualNodeName(cluster, member)
	return now != n.Name && want[now]
}

// retire drains a virtual node no member wants (cordon, evict when evict
// is set, wait for the copies to end) and deletes it, with its lease, once
// it is empty. While it drains, its lease is renewed as long as its member
// answers. A node an earlier version named (renamed) is not evicted: it is
// cordoned and goes once its pods have ended on their own.
func (c *Controller) retire(ctx context.Context, n *corev1.Node, evict bool) error {
	if up, changed := translate.Cordon(n); changed {
		if _, err := c.hostCS.CoreV1().Nodes().Update(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("cordon %s: %w", n.Name, err)
		}
		c.Log.Info("virtual node cordoned: its member is leaving", "node", n.Name)
	}
	d := translate.DrainNode(c.podsOn(n.Name))
	errs := []error{c.heartbeat(ctx, n)}
	for _, p := range d.Evict {
		if evict {
			errs = append(errs, c.evict(ctx, p))
		}
	}
	if d.Remaining > 0 {
		return errors.Join(errs...) // the next pass looks again
	}
	return errors.Join(append(errs, c.removeNode(ctx, n))...)
}

// heartbeat keeps a draining node's lease while its member answers, and
// turns it Unknown after the grace period otherwise.
func (c *Controller) heartbeat(ctx context.Context, n *corev1.Node) error {
	if m := c.member(n.Labels[LabelCluster]); m != nil && !m.down.Load() {
		return c.renewLease(ctx, n.Name)
	}
	return c.markUnreachable(ctx, n)
}

// evict asks the host to evict p (the pod of that UID only); a budget that
// allows no disruption now is no error: the next pass asks again.
func (c *Controller) evict(ctx context.Context, p *corev1.Pod) error {
	uid := p.UID
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}}
	err := c.hostCS.PolicyV1().Evictions(p.Namespace).Evict(ctx, ev)
	switch {
	case err == nil:
		c.event(p, corev1.EventTypeNormal, "Evicted", fmt.Sprintf("its cluster is leaving the tree (node %s)", p.Spec.NodeName))
		return nil
	case apierrors.IsTooManyRequests(err):
		c.Log.Info("eviction refused by a disruption budget; retrying", "pod", p.Namespace+"/"+p.Name, "err", err)
		return nil
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return nil // gone, or a new pod of that name
	}
	return fmt.Errorf("evict pod %s/%s from %s: %w", p.Namespace, p.Name, p.Spec.NodeName, err)
}

// podsOn lists the host pods bound to node.
func (c *Controller) podsOn(node string) []*corev1.Pod {
	objs, _ := c.hostPods.ByIndex(indexByNode, node)
	out := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*corev1.Pod))
	}
	return out
}
