// This file runs opted-in host DaemonSets in the members
// (translate/daemonset.go says what and why): each pass writes every
// reachable member's DaemonSets, deletes those whose host DaemonSet is
// gone or opted out, and sums the members' counts back into the host
// DaemonSet. A DaemonSet pod bound to a virtual node is never copied; it
// gets an event instead.

package tree

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"kosmos.io/kosmos/tree/translate"
)

// Reasons the tree writes on host DaemonSets and their pods.
const (
	ReasonDaemonSetPod     = "DaemonSetPodNotRun"
	ReasonDaemonSetRefused = "MemberDaemonSetRefused"
	ReasonDaemonSetTaken   = "MemberDaemonSetNameTaken"
	ReasonDaemonSetFailed  = "MemberDaemonSetFailed"
)

// daemonSetPod tells why DaemonSet pod hp, bound to a virtual node, does
// not run in the member.
func (m *memberSync) daemonSetPod(hp *corev1.Pod) error {
	ds, err := m.ctl.hostDaemonSets.DaemonSets(hp.Namespace).Get(translate.DaemonSetOf(hp))
	if err != nil {
		ds = nil
	}
	m.host.Event(hp, corev1.EventTypeWarning, ReasonDaemonSetPod, translate.DaemonSetPodMessage(hp, ds, m.name))
	return nil
}

// syncDaemonSets writes the member's DaemonSet for every host DaemonSet
// this pass admitted (dependencies first, as for a pod) and deletes the
// member DaemonSets no admitted host DaemonSet wants any more (those whose
// admission could not be asked stay). A failure of one DaemonSet is an
// event on it, never the member's pass error: the virtual nodes and the
// tree's readiness do not hang on one DaemonSet. Without the right to
// manage DaemonSets in the member (older host-access RBAC), each says so.
func (m *memberSync) syncDaemonSets(ctx context.Context) error {
	adm := m.ctl.dsAdmission.Load()
	if !m.ready.Load() || adm == nil {
		return nil
	}
	if ok, why := m.daemonSetsReady(ctx); !ok {
		for _, ds := range adm.run {
			m.ctl.daemonSetEvent(ds, corev1.EventTypeWarning, ReasonDaemonSetRefused, fmt.Sprintf("not run in member cluster %s: %s", m.name, why))
		}
		return nil
	}
	cl := m.cluster.Load()
	o := translate.PodOptions{Owner: m.owner, MemberTolerations: cl.Spec.Tree.MemberTolerations}
	o.HostAPIHost, o.HostAPIPort = translate.SplitEndpoint(cl.Spec.HostAPIEndpoint)
	want := map[string]bool{}
	for _, ds := range adm.run {
		want[ds.Namespace+"/"+ds.Name] = true
		if err := m.syncDaemonSet(ctx, ds, o); err != nil {
			m.ctl.daemonSetEvent(ds, corev1.EventTypeWarning, ReasonDaemonSetFailed, err.Error())
		}
	}
	own, _ := m.daemonSets.List(labels.Everything())
	for _, ds := range own {
		key := ds.Namespace + "/" + ds.Name
		if want[key] || adm.keep[key] {
			continue
		}
		if err := m.deleteDaemonSet(ctx, ds); err != nil {
			m.ctl.Log.Warn("member DaemonSet", "cluster", m.name, "daemonset", key, "err", err)
		}
	}
	return nil
}

// syncDaemonSet creates or updates the member's DaemonSet for host
// DaemonSet ds; one the tree did not create is left alone (an event says
// so). A changed selector, which a DaemonSet cannot take, deletes the
// member's DaemonSet; the next pass creates it anew.
func (m *memberSync) syncDaemonSet(ctx context.Context, ds *appsv1.DaemonSet, o translate.PodOptions) error {
	want, err := translate.MemberDaemonSet(ds, o)
	if err != nil {
		m.ctl.daemonSetEvent(ds, corev1.EventTypeWarning, ReasonDaemonSetRefused, fmt.Sprintf("not run in member cluster %s: %v", m.name, err))
		return nil // the DaemonSet must change first
	}
	if err := m.ensureDeps(ctx, translate.DaemonSetTemplatePod(ds), false); err != nil {
		return fmt.Errorf("DaemonSet %s/%s dependencies in member %s: %w", ds.Namespace, ds.Name, m.name, err)
	}
	api := m.cs.AppsV1().DaemonSets(ds.Namespace)
	have, err := m.daemonSets.DaemonSets(ds.Namespace).Get(ds.Name)
	if err != nil { // not the tree's (yet): create, or find someone else's
		_, err = api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			if live, gerr := api.Get(ctx, ds.Name, metav1.GetOptions{}); gerr == nil && !m.isOwn(live.Labels) {
				m.ctl.daemonSetEvent(ds, corev1.EventTypeWarning, ReasonDaemonSetTaken, fmt.Sprintf("member cluster %s has a DaemonSet %s/%s Kosmos did not create; it is left alone", m.name, ds.Namespace, ds.Name))
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("create DaemonSet %s/%s in member %s: %w", ds.Namespace, ds.Name, m.name, err)
		}
		return nil
	}
	if translate.MemberDaemonSetRecreate(want, have) {
		m.ctl.Log.Info("member DaemonSet selector changed: recreated", "cluster", m.name, "daemonset", ds.Namespace+"/"+ds.Name)
		return m.deleteDaemonSet(ctx, have)
	}
	up, changed := translate.MemberDaemonSetUpdate(want, have)
	if !changed {
		return nil
	}
	if _, err := api.Update(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("update DaemonSet %s/%s in member %s: %w", ds.Namespace, ds.Name, m.name, err)
	}
	return nil
}

// deleteDaemonSet deletes the tree's member DaemonSet ds (only that UID);
// its pods go with it (background propagation).
func (m *memberSync) deleteDaemonSet(ctx context.Context, ds *appsv1.DaemonSet) error {
	uid := ds.UID
	bg := metav1.DeletePropagationBackground
	err := m.cs.AppsV1().DaemonSets(ds.Namespace).Delete(ctx, ds.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, PropagationPolicy: &bg})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete DaemonSet %s/%s in member %s: %w", ds.Namespace, ds.Name, m.name, err)
	}
	return nil
}

// removeDaemonSets deletes every member DaemonSet of the tree's (the
// cluster leaves).
func (m *memberSync) removeDaemonSets(ctx context.Context) error {
	if !m.ready.Load() || !m.dsSynced() {
		return nil
	}
	own, _ := m.daemonSets.List(labels.Everything())
	var errs []error
	for _, ds := range own {
		errs = append(errs, m.deleteDaemonSet(ctx, ds))
	}
	return errors.Join(errs...)
}

// sumDaemonSets writes, on every admitted host DaemonSet, the sum of its
// member DaemonSets over the clusters in the tree (live); a failure is
// logged, not the pass's (the next pass writes again).
func (c *Controller) sumDaemonSets(ctx context.Context, live map[string]bool) error {
	var members []*memberSync
	for _, m := range c.memberList() {
		if live[m.name] && m.ready.Load() && m.dsSynced() {
			members = append(members, m)
		}
	}
	adm := c.dsAdmission.Load()
	if adm == nil {
		return nil
	}
	for _, ds := range adm.run {
		parts := map[string]*appsv1.DaemonSet{}
		for _, m := range members {
			have, err := m.daemonSets.DaemonSets(ds.Namespace).Get(ds.Name)
			if err != nil || have.Annotations[translate.AnnotationHostDaemonSetUID] != string(ds.UID) {
				have = nil
			}
			parts[m.name] = have
		}
		if err := c.writeDaemonSetSum(ctx, ds, translate.SumDaemonSets(parts)); err != nil {
			c.Log.Warn("host DaemonSet sum", "daemonset", ds.Namespace+"/"+ds.Name, "err", err)
		}
	}
	return nil
}

// writeDaemonSetSum writes sum into host DaemonSet ds when it changed:
// the annotation, then the status condition.
func (c *Controller) writeDaemonSetSum(ctx context.Context, ds *appsv1.DaemonSet, sum translate.MemberDaemonSetStatus) error {
	up, status, meta := translate.HostDaemonSetStatus(ds, sum, metav1.Now())
	api := c.hostCS.AppsV1().DaemonSets(ds.Namespace)
	var err error
	if meta {
		cond := up.Status
		if up, err = api.Update(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return ignoreConflict(fmt.Errorf("host DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err))
		}
		up.Status.Conditions = cond.Conditions
	}
	if status {
		if _, err = api.UpdateStatus(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return ignoreConflict(fmt.Errorf("host DaemonSet %s/%s status: %w", ds.Namespace, ds.Name, err))
		}
	}
	return nil
}

// ignoreConflict drops a conflict (the next pass writes again, from the
// object as it is then).
func ignoreConflict(err error) error {
	if apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// daemonSetEvent records an event on a host DaemonSet (and logs it).
func (c *Controller) daemonSetEvent(ds *appsv1.DaemonSet, typ, reason, msg string) {
	if c.recorder != nil {
		c.recorder.Event(ds, typ, reason, msg)
	}
	c.Log.Info("DaemonSet event", "daemonset", ds.Namespace+"/"+ds.Name, "reason", reason, "message", msg)
}

// hostDaemonSetsWanted are the host DaemonSets that run in members.
func (c *Controller) hostDaemonSetsWanted() []*appsv1.DaemonSet {
	all, _ := c.hostDaemonSets.List(labels.Everything())
	var out []*appsv1.DaemonSet
	for _, ds := range all {
		if translate.MemberDaemonSetWanted(ds) {
			out = append(out, ds)
		}
	}
	return out
}
