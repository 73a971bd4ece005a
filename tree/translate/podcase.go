// This file is the pod sync's decision: what to do for one pod name,
// given the host pod and the member pod as the caches show them. The
// controller acts on the answer, one small handler per case.

package translate

import (
	corev1 "k8s.io/api/core/v1"
)

// PodPair is what one member's pod sync knows of one pod name.
type PodPair struct {
	// Host is the host's pod of that name, nil when absent.
	Host *corev1.Pod
	// HostCluster is the member behind Host's node: "" when the node is
	// not a virtual node the host's cache shows.
	HostCluster string
	// Member is the member's pod of that name, nil when absent.
	Member *corev1.Pod
	// Cluster is the member this sync serves; Owner its LabelOwner value.
	Cluster, Owner string
}

// PodCase is what the pod sync does for a PodPair.
type PodCase int

const (
	// PodNothing: nothing to do (no pods; a finished host pod whose copy
	// is gone; a member pod the tree did not create and
	// no host pod that wants its name).
	PodNothing PodCase = iota
	// PodWait: look again once the caches have caught up (the host pod's
	// virtual node is not in the cache, or a stale copy is stopping).
	PodWait
	// PodNameTaken: the member has a pod of that name the tree did not
	// create; the host pod gets a warning event and the pod is left alone.
	PodNameTaken
	// PodDeleteStale: the copy is of an earlier host pod of the same name
	// (a StatefulSet replica recreated): it is deleted with its own grace
	// period, then the new copy is made, so the two never run at once.
	PodDeleteStale
	// PodDeleteOrphan: the copy's host pod is gone (or bound elsewhere).
	PodDeleteOrphan
	// PodDeleteMember: the host pod is terminating: the copy is deleted
	// with the host's grace period, its status still carried up.
	PodDeleteMember
	// PodStatusUp: the copy is terminating: only its status is carried up.
	PodStatusUp
	// PodReleaseHost: the host pod is terminating and its copy is gone:
	// the host pod is let go (grace 0), as a kubelet does.
	PodReleaseHost
	// PodFailGone: the copy of a started host pod vanished: the host pod
	// fails (MemberPodGone).
	PodFailGone
	// PodCreate: the host pod has no copy yet: dependencies, then the copy.
	PodCreate
	// PodUpdate: both run: updatable fields go down, the status comes up.
	PodUpdate
	// PodDaemonSet: a DaemonSet pod without a copy: never copied (a
	// virtual node is no machine); an event says why (DaemonSetPodMessage).
	PodDaemonSet
)

var podCaseNames = [...]string{"nothing", "wait", "name-taken", "delete-stale", "delete-orphan", "delete-member",
	"status-up", "release-host", "fail-gone", "create", "update", "daemonset"}

func (c PodCase) String() string {
	if c < 0 || int(c) >= len(podCaseNames) {
		return "PodCase(?)"
	}
	return podCaseNames[c]
}

// ClassifyPod says what to do for p. A member pod the tree did not create
// (not marked as this sync's) is never touched; a host pod bound to
// another member's node counts as absent.
func ClassifyPod(p PodPair) PodCase {
	hp, mp := p.Host, p.Member
	if hp != nil {
		switch {
		case p.HostCluster == "" && mp != nil:
			// The virtual node is not (or no longer) in the cache: never
			// take the running copy for an orphan on that alone.
			return PodWait
		case p.HostCluster != p.Cluster:
			hp = nil // bound elsewhere: not this member's pod
		}
	}
	own := mp != nil && mp.Labels[LabelManagedBy] == ManagedBy && mp.Labels[LabelOwner] == p.Owner
	switch {
	case mp != nil && !own && hp != nil:
		return PodNameTaken
	case mp != nil && !own:
		return PodNothing
	case mp != nil && hp != nil && mp.Annotations[AnnotationHostPodUID] != string(hp.UID):
		return ifDeleting(mp, PodWait, PodDeleteStale)
	case hp == nil && mp != nil:
		return ifDeleting(mp, PodNothing, PodDeleteOrphan)
	case hp == nil:
		return PodNothing
	case hp.DeletionTimestamp != nil && mp != nil:
		return ifDeleting(mp, PodStatusUp, PodDeleteMember)
	case hp.DeletionTimestamp != nil:
		return PodReleaseHost
	case mp == nil:
		return classifyMissing(hp)
	}
	return ifDeleting(mp, PodStatusUp, PodUpdate)
}

// classifyMissing decides for a live host pod without a copy: a copy that
// ran and vanished fails the pod; a finished pod rests; DaemonSet pods
// are not run in members (a DaemonSet that tolerates every taint means
// one per machine of the host, not a privileged agent in each member).
func classifyMissing(hp *corev1.Pod) PodCase {
	switch {
	case hp.Status.StartTime != nil && !Terminal(hp):
		return PodFailGone
	case Terminal(hp):
		return PodNothing
	}
	if DaemonSetOf(hp) != "" {
		return PodDaemonSet
	}
	return PodCreate
}

func ifDeleting(p *corev1.Pod, deleting, alive PodCase) PodCase {
	if p.DeletionTimestamp != nil {
		return deleting
	}
	return alive
}

// Terminal tells whether p has finished (Succeeded or Failed).
func Terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}
