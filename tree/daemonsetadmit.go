// This file gates host DaemonSets before any member runs them
// (translate/daemonsetadmit.go says why): once per pass, each annotated
// DaemonSet is run only when its host namespace opted in and a Pod built
// from its template passes the host's admission as a server-side dry run
// (dryRun=All: Pod Security, webhooks). A refusal is an event on the
// DaemonSet and its member DaemonSets go; a dry run that could not be
// asked (the host API server did not answer) keeps them as they are,
// neither updated nor deleted, until the next pass.

package tree

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/tree/translate"
)

// ReasonDaemonSetNotAdmitted is the event on a host DaemonSet that may
// not run in members (namespace not opted in, or host admission refused
// its pod template).
const ReasonDaemonSetNotAdmitted = "MemberDaemonSetNotAdmitted"

// daemonSetAdmission is one pass's verdict over the annotated host
// DaemonSets: run those in run; leave the member DaemonSets of those in
// keep ("namespace/name") as they are.
type daemonSetAdmission struct {
	run  []*appsv1.DaemonSet
	keep map[string]bool
}

// admitDaemonSets judges every annotated host DaemonSet for this pass.
func (c *Controller) admitDaemonSets(ctx context.Context) *daemonSetAdmission {
	a := &daemonSetAdmission{keep: map[string]bool{}}
	for _, ds := range c.hostDaemonSetsWanted() {
		ns, err := c.hostNamespaces.Get(ds.Namespace)
		if err != nil {
			ns = nil
		}
		if err := translate.MemberDaemonSetNamespace(ns); err != nil {
			c.daemonSetEvent(ds, corev1.EventTypeWarning, ReasonDaemonSetNotAdmitted, "not run in member clusters: "+err.Error())
			continue
		}
		_, err = c.hostCS.CoreV1().Pods(ds.Namespace).Create(ctx, translate.DaemonSetDryRunPod(ds),
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: FieldManager})
		switch {
		case err == nil:
			a.run = append(a.run, ds)
		case refusal(err):
			c.daemonSetEvent(ds, corev1.EventTypeWarning, ReasonDaemonSetNotAdmitted,
				fmt.Sprintf("not run in member clusters: the host refuses a pod of its template in namespace %s (server-side dry run): %v", ds.Namespace, err))
		default:
			a.keep[ds.Namespace+"/"+ds.Name] = true
			c.Log.Warn("DaemonSet admission dry run", "daemonset", ds.Namespace+"/"+ds.Name, "err", err)
		}
	}
	return a
}

// refusal tells whether the host's answer to a dry run is a verdict on
// the pod (admission, validation, the tree's missing right to ask), not a
// failure to get one.
func refusal(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsNotFound(err)
}
