package tree

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	reasonDependencyError = "DependencySyncFailed"
)

// reconcilePod brings one pod pair together: the host pod namespace/name
// bound to one of this member's virtual nodes, and its copy in the member.
//
//   - host pod alive, no copy: sync its dependencies and create the copy;
//   - both alive: carry updatable fields down and the status up;
//   - host pod terminating: delete the copy with the host's grace period,
//     then let the host pod go (as a kubelet does, with grace 0);
//   - host pod gone: delete the copy (an orphan);
//   - copy gone after it ran: the host pod fails with MemberPodGone.
//
// A member pod the tree did not create is never touched.
func (m *memberSync) reconcilePod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key we made: drop it
	}
	hp := m.ctl.hostPod(ns, name)
	if hp != nil {
		switch cl := m.ctl.clusterOfNode(hp.Spec.NodeName); {
		case cl == "" && m.Pod(ns, name) != nil:
			// The virtual node is not (or no longer) in the cache: never
			// take the running copy for an orphan on that alone.
			return errRequeue
		case cl != m.name:
			hp = nil // bound elsewhere: not this member's pod
		}
	}
	mp := m.Pod(ns, name)
	if mp != nil && !m.isOwn(mp.Labels) {
		if hp != nil {
			m.ctl.event(hp, corev1.EventTypeWarning, ReasonNameTaken, fmt.Sprintf("member cluster %s already has a pod %s it did not get from the host; it is left alone", m.name, key))
		}
		return nil
	}
	if mp != nil && hp != nil && mp.Annotations[translate.AnnotationHostPodUID] != string(hp.UID) {
		// A copy of an earlier host pod of the same name (a StatefulSet
		// replica recreated, say): it stops, with its own grace period,
		// before the new one is made, so the two never run at once.
		if mp.DeletionTimestamp == nil {
			if err := m.DeletePod(ctx, ns, name, mp.UID, nil); err != nil {
				return fmt.Errorf("delete stale member pod: %w", err)
			}
		}
		return errRequeue
	}
	switch {
	case hp == nil:
		if mp != nil && mp.DeletionTimestamp == nil {
			m.ctl.Log.Info("member pod without host pod deleted", "cluster", m.name, "pod", key)
			return m.DeletePod(ctx, ns, name, mp.UID, nil)
		}
		return nil
	case hp.DeletionTimestamp != nil:
		if mp != nil {
			if mp.DeletionTimestamp == nil {
				if err := m.DeletePod(ctx, ns, name, mp.UID, hp.DeletionGracePeriodSeconds); err != nil {
					return fmt.Errorf("delete member pod: %w", err)
				}
			}
			return m.syncStatus(ctx, hp, mp)
		}
		if live, err := m.livePod(ctx, ns, name); err != nil || live != nil {
			return cmpErr(err, errRequeue) // the cache is behind: the copy still runs
		}
		zero := int64(0)
		err := m.ctl.hostCS.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &hp.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	case mp == nil:
		if hp.Status.StartTime != nil && !terminal(hp) {
			if live, err := m.livePod(ctx, ns, name); err != nil || live != nil {
				return cmpErr(err, errRequeue)
			}
			return m.fail(ctx, hp, ReasonMemberPodGone, fmt.Sprintf("the pod disappeared from member cluster %s", m.name))
		}
		if terminal(hp) {
			return nil
		}
		return m.create(ctx, hp)
	default:
		if mp.DeletionTimestamp == nil && mp.Status.Phase == corev1.PodPending {
			// Still starting: a dependency created in the host after the
			// pod (or collected meanwhile) is copied now.
			if o, err := m.options(hp); err == nil {
				if err := m.ensureDeps(ctx, hp, translate.NeedsHostToken(hp, o)); err != nil {
					return err
				}
			}
		}
		if mp.DeletionTimestamp == nil {
			want, err := m.translate(hp)
			if err == nil {
				if upd, changed := translate.UpdatePod(want, mp); changed {
					if err := m.UpdatePod(ctx, upd); err != nil {
						return fmt.Errorf("update member pod: %w", err)
					}
				}
			}
		}
		return m.syncStatus(ctx, hp, mp)
	}
}

// livePod reads the member pod from the API server, past the cache: nil
// when it does not exist. Used before acting on a copy's absence.
func (m *memberSync) livePod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	p, err := m.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return p, err
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// options say how hp becomes a member pod in this member's mode and with
// its host endpoint.
func (m *memberSync) options(hp *corev1.Pod) (translate.PodOptions, error) {
	cl := m.cluster.Load()
	o := translate.PodOptions{VirtualNode: hp.Spec.NodeName, Owner: m.owner}
	if cl.Spec.Tree.Mode == v1alpha1.TreeOneToOne {
		o.MemberNode = m.ctl.memberNodeOf(hp.Spec.NodeName)
		if o.MemberNode == "" {
			return o, fmt.Errorf("virtual node %s names no member node", hp.Spec.NodeName)
		}
	}
	o.HostAPIHost, o.HostAPIPort = translate.SplitEndpoint(cl.Spec.HostAPIEndpoint)
	return o, nil
}

// translate renders the member copy of hp.
func (m *memberSync) translate(hp *corev1.Pod) (*corev1.Pod, error) {
	o, err := m.options(hp)
	if err != nil {
		return nil, err
	}
	return translate.MemberPod(hp, o)
}

// create syncs hp's dependencies into the member and creates its copy.
// DaemonSet pods are not run in members: a DaemonSet that tolerates every
// taint means one per machine of the host, not a privileged agent in each
// member.
func (m *memberSync) create(ctx context.Context, hp *corev1.Pod) error {
	if ref := metav1.GetControllerOf(hp); ref != nil && ref.Kind == "DaemonSet" {
		return nil
	}
	o, err := m.options(hp)
	if err != nil {
		return err
	}
	mp, err := translate.MemberPod(hp, o)
	if err != nil {
		m.ctl.event(hp, corev1.EventTypeWarning, ReasonBadTranslation, err.Error())
		return nil // the pod must change before retrying helps
	}
	if err := m.ensureDeps(ctx, hp, translate.NeedsHostToken(hp, o)); err != nil {
		m.ctl.event(hp, corev1.EventTypeWarning, reasonDependencyError, err.Error())
		return err
	}
	if err := m.CreatePod(ctx, mp); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return errRequeue // the cache has not seen it yet
		}
		return fmt.Errorf("create pod %s/%s in member %s: %w", hp.Namespace, hp.Name, m.name, err)
	}
	return nil
}

// syncStatus writes the member pod's status onto the host pod when it
// differs from what the host shows.
func (m *memberSync) syncStatus(ctx context.Context, hp, mp *corev1.Pod) error {
	want := translate.HostStatus(mp, &hp.Status, *m.gm.Load())
	if equality.Semantic.DeepEqual(hp.Status, want) {
		return nil
	}
	up := hp.DeepCopy()
	up.Status = want
	_, err := m.ctl.hostCS.CoreV1().Pods(up.Namespace).UpdateStatus(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
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
	if _, err := m.ctl.hostCS.CoreV1().Pods(up.Namespace).UpdateStatus(ctx, up, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return err
	}
	m.ctl.event(hp, corev1.EventTypeWarning, reason, msg)
	return nil
}
