package tree

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"

	"kosmos.io/kosmos/schema/v1alpha1"
	"kosmos.io/kosmos/tree/translate"
)

// Reasons the tree writes on host pods.
const (
	ReasonMemberPodGone   = "MemberPodGone"
	ReasonNameTaken       = "MemberNameTaken"
	ReasonBadTranslation  = "MemberPodRefused"
	ReasonMissingNode     = "MemberNodeMissing"
	ReasonAddressRefused  = "MemberAddressRefused"
	reasonDependencyError = "DependencySyncFailed"
)

// ReasonHostServicesUnreachable is the event on a host pod whose copy
// keeps the member's DNS and service links (translate.HostServiceReach).
const ReasonHostServicesUnreachable = "HostServicesUnreachable"

// reconcilePod brings one pod pair together: the host pod namespace/name
// bound to one of this member's virtual nodes, and its copy in the
// member. translate.ClassifyPod decides what to do from the caches; one
// handler below does it, through the MemberPods and HostPods seams.
func (m *memberSync) reconcilePod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key we made: drop it
	}
	p := translate.PodPair{Host: m.host.Pod(ns, name), Member: m.pods.Pod(ns, name), Cluster: m.name, Owner: m.owner}
	if p.Host != nil {
		p.HostCluster = m.host.ClusterOf(p.Host.Spec.NodeName)
	}
	switch translate.ClassifyPod(p) {
	case translate.PodWait:
		return errRequeue
	case translate.PodNameTaken:
		return m.nameTaken(p.Host)
	case translate.PodDeleteStale:
		return m.deleteStale(ctx, p.Member)
	case translate.PodDeleteOrphan:
		return m.deleteOrphan(ctx, p.Member)
	case translate.PodDeleteMember:
		return m.deleteMember(ctx, p.Host, p.Member)
	case translate.PodStatusUp:
		return m.syncStatus(ctx, p.Host, p.Member)
	case translate.PodReleaseHost:
		return m.releaseHost(ctx, p.Host)
	case translate.PodFailGone:
		return m.failGone(ctx, p.Host)
	case translate.PodCreate:
		return m.create(ctx, p.Host)
	case translate.PodUpdate:
		return m.update(ctx, p.Host, p.Member)
	case translate.PodDaemonSet:
		return m.daemonSetPod(p.Host)
	}
	return nil // PodNothing
}

// nameTaken reports that the member has a pod of hp's name it did not
// get from the host; that pod is left alone.
func (m *memberSync) nameTaken(hp *corev1.Pod) error {
	m.host.Event(hp, corev1.EventTypeWarning, ReasonNameTaken,
		fmt.Sprintf("member cluster %s already has a pod %s/%s it did not get from the host; it is left alone", m.name, hp.Namespace, hp.Name))
	return nil
}

// deleteStale deletes the copy of an earlier host pod of the same name,
// with its own grace period, and looks again once it is gone.
func (m *memberSync) deleteStale(ctx context.Context, mp *corev1.Pod) error {
	if err := m.pods.DeletePod(ctx, mp.Namespace, mp.Name, mp.UID, nil); err != nil {
		return fmt.Errorf("delete stale member pod %s/%s in member %s: %w", mp.Namespace, mp.Name, m.name, err)
	}
	return errRequeue
}

// deleteOrphan deletes a copy whose host pod is gone.
func (m *memberSync) deleteOrphan(ctx context.Context, mp *corev1.Pod) error {
	m.ctl.Log.Info("member pod without host pod deleted", "cluster", m.name, "pod", mp.Namespace+"/"+mp.Name)
	return m.pods.DeletePod(ctx, mp.Namespace, mp.Name, mp.UID, nil)
}

// deleteMember deletes the copy of a terminating host pod with the
// host's grace period, and carries its status up meanwhile.
func (m *memberSync) deleteMember(ctx context.Context, hp, mp *corev1.Pod) error {
	if err := m.pods.DeletePod(ctx, mp.Namespace, mp.Name, mp.UID, hp.DeletionGracePeriodSeconds); err != nil {
		return fmt.Errorf("delete member pod %s/%s in member %s: %w", mp.Namespace, mp.Name, m.name, err)
	}
	return m.syncStatus(ctx, hp, mp)
}

// releaseHost lets a terminating host pod go once its copy is gone from
// the member's API server (not only from the cache), as a kubelet does:
// with grace 0.
func (m *memberSync) releaseHost(ctx context.Context, hp *corev1.Pod) error {
	if err := m.absent(ctx, hp); err != nil {
		return err
	}
	zero := int64(0)
	err := m.host.DeletePod(ctx, hp.Namespace, hp.Name, hp.UID, &zero)
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// failGone fails a started host pod whose copy vanished from the member.
func (m *memberSync) failGone(ctx context.Context, hp *corev1.Pod) error {
	if err := m.absent(ctx, hp); err != nil {
		return err
	}
	return m.fail(ctx, hp, ReasonMemberPodGone, fmt.Sprintf("the pod disappeared from member cluster %s", m.name))
}

// absent confirms with the member's API server that hp has no copy: nil
// when it has none, errRequeue while the cache is behind (the copy still
// runs).
func (m *memberSync) absent(ctx context.Context, hp *corev1.Pod) error {
	live, err := m.pods.LivePod(ctx, hp.Namespace, hp.Name)
	switch {
	case err != nil:
		return err
	case live != nil:
		return errRequeue
	}
	return nil
}

// options say how hp becomes a member pod in this member's mode (with the
// taints of the member node a OneToOne copy is pinned to), with its host
// endpoint and the tolerations it allows.
func (m *memberSync) options(hp *corev1.Pod) (translate.PodOptions, error) {
	cl := m.cluster.Load()
	o := translate.PodOptions{VirtualNode: hp.Spec.NodeName, Owner: m.owner, MemberTolerations: cl.Spec.Tree.MemberTolerations}
	if cl.Spec.Tree.Mode == v1alpha1.TreeOneToOne {
		o.MemberNode = m.host.MemberNodeOf(hp.Spec.NodeName)
		if o.MemberNode == "" {
			return o, fmt.Errorf("virtual node %s names no member node", hp.Spec.NodeName)
		}
		if n, err := m.nodes.Get(o.MemberNode); err == nil {
			o.MemberNodeTaints = n.Spec.Taints
		}
	} else {
		o.GroupSelector, o.AvoidGroups = translate.GroupPlacement(cl, hp.Spec.NodeName)
	}
	o.HostAPIHost, o.HostAPIPort = translate.SplitEndpoint(cl.Spec.HostAPIEndpoint)
	o.HostDNS, o.HostServiceLinks, o.HostServiceEnv = m.ctl.hostServiceLinks(translate.ParseHostServiceReach(&cl.Spec), hp.Namespace)
	return o, nil
}

// create syncs hp's dependencies into the member and creates its copy.
func (m *memberSync) create(ctx context.Context, hp *corev1.Pod) error {
	o, err := m.options(hp)
	if err != nil {
		return err
	}
	if r := translate.ParseHostServiceReach(&m.cluster.Load().Spec); r.Unreachable != "" {
		m.host.Event(hp, corev1.EventTypeWarning, ReasonHostServicesUnreachable, fmt.Sprintf("the copy in member cluster %s resolves names at the member's DNS and gets the member's service variables, not the host's: %s", m.name, r.Unreachable))
	}
	mp, err := translate.MemberPod(hp, o)
	if err != nil {
		m.host.Event(hp, corev1.EventTypeWarning, ReasonBadTranslation, err.Error())
		return nil // the pod must change before retrying helps
	}
	if err := m.ensureDeps(ctx, hp, translate.NeedsHostToken(hp, o)); err != nil {
		if !onlyWaiting(err) { // e.g. another worker's copy not yet in the cache
			m.host.Event(hp, corev1.EventTypeWarning, reasonDependencyError, err.Error())
		}
		return err
	}
	if err := m.pods.CreatePod(ctx, mp); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return errRequeue // the cache has not seen it yet
		}
		return fmt.Errorf("create pod %s/%s in member %s: %w", hp.Namespace, hp.Name, m.name, err)
	}
	return nil
}

// update carries hp's updatable fields down to its running copy mp and
// mp's status up.
func (m *memberSync) update(ctx context.Context, hp, mp *corev1.Pod) error {
	if o, err := m.options(hp); err == nil {
		if err := m.carryDown(ctx, hp, mp, o); err != nil {
			return err
		}
	}
	return m.syncStatus(ctx, hp, mp)
}

// carryDown writes what changed in hp's updatable fields onto mp. While
// mp is still starting, a dependency created in the host after the pod
// (or collected meanwhile) is copied too.
func (m *memberSync) carryDown(ctx context.Context, hp, mp *corev1.Pod, o translate.PodOptions) error {
	if mp.Status.Phase == corev1.PodPending {
		if err := m.ensureDeps(ctx, hp, translate.NeedsHostToken(hp, o)); err != nil {
			return err
		}
	}
	want, err := translate.MemberPod(hp, o)
	if err != nil {
		return nil // the pod ran before: an annotation broken since is no reason to stop it
	}
	upd, changed := translate.UpdatePod(want, mp)
	if !changed {
		return nil
	}
	if err := m.pods.UpdatePod(ctx, upd); err != nil {
		return fmt.Errorf("update member pod %s/%s in member %s: %w", mp.Namespace, mp.Name, m.name, err)
	}
	return nil
}

// syncStatus writes the member pod's status onto the host pod when it
// differs from what the host shows. Addresses the member may not report
// (translate.HostStatus) are left out, and a warning names them.
func (m *memberSync) syncStatus(ctx context.Context, hp, mp *corev1.Pod) error {
	want, refused := translate.HostStatus(mp, &hp.Status, *m.net.Load())
	if equality.Semantic.DeepEqual(hp.Status, want) {
		return nil
	}
	if len(refused) > 0 {
		m.host.Event(hp, corev1.EventTypeWarning, ReasonAddressRefused, fmt.Sprintf(
			"member cluster %s reported addresses %v for pod %s/%s that lie outside its pod CIDRs %v (or are no unicast host address); they are not written to the host",
			m.name, refused, hp.Namespace, hp.Name, m.cluster.Load().Spec.PodCIDRs))
	}
	up := hp.DeepCopy()
	up.Status = want
	return m.host.UpdateStatus(ctx, up)
}

// fail marks a host pod Failed with reason and message.
func (m *memberSync) fail(ctx context.Context, hp *corev1.Pod, reason, msg string) error {
	up := hp.DeepCopy()
	up.Status.Phase, up.Status.Reason, up.Status.Message = corev1.PodFailed, reason, msg
	for i := range up.Status.Conditions {
		if up.Status.Conditions[i].Type == corev1.PodReady || up.Status.Conditions[i].Type == corev1.ContainersReady {
			up.Status.Conditions[i].Status = corev1.ConditionFalse
			up.Status.Conditions[i].Reason = reason
		}
	}
	if err := m.host.UpdateStatus(ctx, up); err != nil {
		return err
	}
	m.host.Event(hp, corev1.EventTypeWarning, reason, msg)
	return nil
}
