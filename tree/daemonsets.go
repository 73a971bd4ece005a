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

// syncDaemonSets writes the member's DaemonSet for every opted-in host
// DaemonSet (dependencies first, as for a pod) and deletes the member
// DaemonSets no host DaemonSet wants any more.
func (m *memberSync) syncDaemonSets(ctx context.Context) error {
	if !m.ready.Load() {
		return nil
	}
	cl := m.cluster.Load()
	o := translate.PodOptions{Owner: m.owner, MemberTolerations: cl.Spec.Tree.MemberTolerations}
	o.HostAPIHost, o.HostAPIPort = translate.SplitEndpoint(cl.Spec.HostAPIEndpoint)
	want := map[string]bool{}
	var errs []error
	for _, ds := range m.ctl.hostDaemonSetsWanted() {
		want[ds.Namespace+"/"+ds.Name] = true
		errs = append(errs, m.syncDaemonSet(ctx, ds, o))
	}
	own, _ := m.daemonSets.List(labels.Everything())
	for _, ds := range own {
		if !want[ds.Namespace+"/"+ds.Name] {
			errs = append(errs, m.deleteDaemonSet(ctx, ds))
		}
	}
	return errors.Join(errs...)
}

// syncDaemonSet creates or updates the member's DaemonSet for host
// DaemonSet ds; one the tree did not create is left alone (an event says
// so).
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
	if !m.ready.Load() {
		return nil
	}
	own, _ := m.daemonSets.List(labels.Everything())
	var errs []error
	for _, ds := range own {
		errs = append(errs, m.deleteDaemonSet(ctx, ds))
	}
	return errors.Join(errs...)
}

// sumDaemonSets writes, on every opted-in host DaemonSet, the sum of its
// member DaemonSets over the clusters in the tree (live).
func (c *Controller) sumDaemonSets(ctx context.Context, live map[string]bool) error {
	var members []*memberSync
	for _, m := range c.memberList() {
		if live[m.name] && m.ready.Load() {
			members = append(members, m)
		}
	}
	var errs []error
	for _, ds := range c.hostDaemonSetsWanted() {
		parts := map[string]*appsv1.DaemonSet{}
		for _, m := range members {
			have, err := m.daemonSets.DaemonSets(ds.Namespace).Get(ds.Name)
			if err != nil || have.Annotations[translate.AnnotationHostDaemonSetUID] != string(ds.UID) {
				have = nil
			}
			parts[m.name] = have
		}
		errs = append(errs, c.writeDaemonSetSum(ctx, ds, translate.SumDaemonSets(parts)))
	}
	return errors.Join(errs...)
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
