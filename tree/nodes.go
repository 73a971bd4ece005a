// This file is the virtual-node side of the Controller: one pass over the
// Cluster objects writes each member's virtual nodes (translate.
// VirtualNodes), their Ready condition and leases, and the Cluster's
// status; nodes no member wants go, those of an unreachable member turn
// Unknown after the grace period.

package tree

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree/translate"
)

// Pass brings every virtual node, lease and dependency copy up to date
// once: one member failing does not stop the others (its nodes are left as
// they are until the grace period makes them NotReady). Nodes no member
// wants any more are drained before they go (leave.go).
func (c *Controller) Pass(ctx context.Context) error {
	var clusters v1alpha1.ClusterList
	if err := c.Host.List(ctx, &clusters); err != nil {
		return fmt.Errorf("list Cluster objects: %w", err)
	}
	nodes, err := c.hostNodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list virtual nodes: %w", err)
	}
	withNodes := map[string]bool{} // clusters that still have virtual nodes
	for _, n := range nodes {
		withNodes[n.Labels[LabelCluster]] = true
	}
	c.dsAdmission.Store(c.admitDaemonSets(ctx))
	res := c.passClusters(ctx, clusters.Items, withNodes)
	c.metrics.nodes.Set(float64(len(res.want)))
	for _, n := range nodes {
		switch {
		case res.want[n.Name]:
		case res.keep[n.Labels[LabelCluster]]:
			res.errs = append(res.errs, c.markUnreachable(ctx, n))
		default:
			res.errs = append(res.errs, c.retire(ctx, n, !renamed(n, res.want)))
		}
	}
	res.errs = append(res.errs, c.sumDaemonSets(ctx, res.live))
	for _, m := range c.memberList() {
		if !res.live[m.name] && !withNodes[m.name] {
			c.dropMember(m.name)
		}
	}
	return errors.Join(res.errs...)
}

// passResult is what one pass over the clusters found.
type passResult struct {
	mu   sync.Mutex
	want map[string]bool // virtual nodes the members want
	keep map[string]bool // clusters whose nodes stay as they are
	live map[string]bool // clusters in the tree (not leaving)
	errs []error
}

// passClusters passes over every cluster with the tree enabled, in
// parallel (a member that does not answer delays no other member's
// leases), and writes each one's status; a leaving cluster (deleted, or
// its tree disabled) is only kept connected while withNodes says its
// virtual nodes are still draining, then let go (leave.go).
func (c *Controller) passClusters(ctx context.Context, clusters []v1alpha1.Cluster, withNodes map[string]bool) *passResult {
	res := &passResult{want: map[string]bool{}, keep: map[string]bool{}, live: map[string]bool{}}
	var wg sync.WaitGroup
	for i := range clusters {
		cl := &clusters[i]
		if leaving(cl) {
			wg.Go(func() { res.fail(cl.Name, c.passLeaving(ctx, cl, withNodes[cl.Name])) })
			continue
		}
		res.live[cl.Name] = true
		wg.Go(func() {
			holdErr := c.hold(ctx, cl)
			names, err := c.passCluster(ctx, cl)
			res.add(c, cl.Name, names, err, errors.Join(holdErr, c.writeClusterStatus(ctx, cl, err)))
		})
	}
	wg.Wait()
	return res
}

// add records one cluster's pass: the nodes it wants; on error, that its
// nodes stay, and the error unless the member just connected and its
// caches are still filling within the grace period.
func (r *passResult) add(c *Controller, cluster string, names []string, err, statusErr error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		r.want[n] = true
	}
	if statusErr != nil {
		r.errs = append(r.errs, fmt.Errorf("cluster %s object: %w", cluster, statusErr))
	}
	if err == nil {
		return
	}
	r.keep[cluster] = true
	if m := c.member(cluster); errors.Is(err, errNotSynced) && m != nil && time.Since(m.connected) < c.Grace {
		return // just connected: give it the grace period
	}
	r.errs = append(r.errs, fmt.Errorf("cluster %s: %w", cluster, err))
}

// removeNode deletes a drained virtual node (only the node of that UID:
// never one someone recreated under the name), and its lease.
func (c *Controller) removeNode(ctx context.Context, n *corev1.Node) error {
	uid := n.UID
	err := c.hostCS.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case apierrors.IsConflict(err):
		return nil // recreated under the name: neither it nor its lease is this node's
	case client.IgnoreNotFound(err) != nil:
		return fmt.Errorf("remove %s: %w", n.Name, err)
	}
	_ = c.hostCS.CoordinationV1().Leases(NodeLeaseNamespace).Delete(ctx, n.Name, metav1.DeleteOptions{})
	c.Log.Info("virtual node removed", "node", n.Name)
	return nil
}

// reach connects to one member (or reuses its sync) and probes it; when
// the member answers again after an outage, every pod is compared again.
func (c *Controller) reach(ctx context.Context, cl *v1alpha1.Cluster) (*memberSync, error) {
	m, err := c.connect(ctx, cl)
	if err != nil {
		return nil, err
	}
	probeErr := m.probe(ctx, 5*time.Second)
	reachable := probeErr == nil
	if m.down.Swap(!reachable) && reachable {
		c.Log.Info("member reachable again; comparing every pod", "cluster", cl.Name)
		m.sweep() // host pods deleted during the outage go in the member too
	}
	c.metrics.reachable.WithLabelValues(cl.Name).Set(map[bool]float64{false: 0, true: 1}[reachable])
	return m, probeErr
}

// passCluster reaches one member and writes its virtual nodes, their
// health and leases; it returns the names of the virtual nodes the member
// wants.
func (c *Controller) passCluster(ctx context.Context, cl *v1alpha1.Cluster) (names []string, err error) {
	if err := translate.CheckClusterName(cl.Name); err != nil {
		return nil, err
	}
	m, probeErr := c.reach(ctx, cl)
	if m == nil {
		return nil, probeErr
	}
	reachable := probeErr == nil
	mem, err := m.observe()
	if err != nil {
		return nil, errors.Join(err, probeErr)
	}
	silent := time.Since(time.Unix(0, m.lastSeen.Load()))
	cond := translate.ReadyCondition(cl.Name, probeErr, silent, c.Grace, translate.UsableNodes(cl, mem), metav1.Now())
	var errs []error
	classes := m.storageClasses()
	for _, n := range translate.VirtualNodes(cl, mem) {
		names = append(names, n.Name)
		offerStorageClasses(n, classes)
		nodeCond := translate.NodeReadyCondition(n, cond)
		n.Status.Conditions = nil
		if err := c.apply(ctx, n, nodeCond); err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", n.Name, err))
			continue
		}
		if reachable {
			errs = append(errs, c.renewLease(ctx, n.Name))
		}
	}
	if reachable {
		errs = append(errs, m.syncDaemonSets(ctx), m.collect(ctx))
	}
	return names, errors.Join(errs...)
}

// markUnreachable turns a virtual node NotReady (Unknown) once its member
// has not been reachable for the grace period.
func (c *Controller) markUnreachable(ctx context.Context, n *corev1.Node) error {
	m := c.member(n.Labels[LabelCluster])
	if m != nil && time.Since(time.Unix(0, m.lastSeen.Load())) < c.Grace {
		return nil
	}
	up, changed := translate.Unreachable(n, metav1.Now())
	if !changed {
		return nil
	}
	_, err := c.hostCS.CoreV1().Nodes().UpdateStatus(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

// apply writes the node (labels, annotations, taints) and its status
// (capacity, allocatable, addresses, the Ready condition cond unless nil)
// when they differ from what the host holds (translate.NodeUpdate,
// NodeStatusUpdate).
func (c *Controller) apply(ctx context.Context, n *corev1.Node, cond *corev1.NodeCondition) error {
	translate.NodeInfo(n, c.NodeIP, c.KubeletPort)
	have, err := c.hostNodes.Get(n.Name)
	if err != nil { // not in the cache: create, or find it was just created
		return c.createNode(ctx, n, cond)
	}
	if err := ownNode(have, n.Labels[LabelCluster]); err != nil {
		return err
	}
	nodes := c.hostCS.CoreV1().Nodes()
	up, changed := translate.NodeUpdate(n, have)
	if changed {
		if up, err = nodes.Update(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return err
		}
	}
	if up, changed = translate.NodeStatusUpdate(n, up, cond); !changed {
		return nil
	}
	_, err = nodes.UpdateStatus(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

// createNode creates virtual node n, then writes its status (with cond
// unless nil), which a create does not take.
func (c *Controller) createNode(ctx context.Context, n *corev1.Node, cond *corev1.NodeCondition) error {
	if cond != nil {
		n.Status.Conditions = []corev1.NodeCondition{*cond}
	}
	status := n.Status
	nodes := c.hostCS.CoreV1().Nodes()
	created, err := nodes.Create(ctx, n, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		// Created by the previous pass (the cache will show it), or a node
		// that is not the tree's: never to be updated nor its Lease renewed.
		have, err := nodes.Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		return ownNode(have, n.Labels[LabelCluster])
	}
	if err != nil {
		return err
	}
	created.Status = status
	c.Log.Info("virtual node created", "node", n.Name)
	_, err = nodes.UpdateStatus(ctx, created, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

// errNodeTaken says a host node has a virtual node's name but is not the
// tree's node for that cluster: it is left alone, its Lease too.
var errNodeTaken = errors.New("a node of this name exists that the tree did not create for this cluster; it is left alone and its Lease is not renewed")

// ownNode checks that host node n is the tree's virtual node of cluster.
func ownNode(n *corev1.Node, cluster string) error {
	if n.Labels[LabelManagedBy] != ManagedBy || n.Labels[LabelCluster] != cluster {
		return fmt.Errorf("host node %s (managed-by %q, cluster %q): %w", n.Name, n.Labels[LabelManagedBy], n.Labels[LabelCluster], errNodeTaken)
	}
	return nil
}

// writeClusterStatus writes cl's status when the pass changed it.
func (c *Controller) writeClusterStatus(ctx context.Context, cl *v1alpha1.Cluster, err error) error {
	up := cl.DeepCopy()
	translate.SetClusterStatus(&up.Status, cl.Generation, err, metav1.Now())
	if equality.Semantic.DeepEqual(up.Status, cl.Status) {
		return nil
	}
	return c.Host.Status().Update(ctx, up)
}
