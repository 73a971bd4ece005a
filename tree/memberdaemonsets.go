// This file starts a member's DaemonSet informer apart from the pod sync's
// caches: a member whose Kosmos identity may not manage DaemonSets (a
// host-access RBAC older than DaemonSets in members) still syncs its pods;
// its DaemonSets wait until a SelfSubjectAccessReview says the identity
// may, asked again at most once a minute.

package tree

import (
	"context"
	"fmt"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// dsRecheck is how often a member without the right to manage DaemonSets
// is asked again.
const dsRecheck = time.Minute

// dsVerbs are what the tree does with DaemonSets in a member.
var dsVerbs = []string{"get", "list", "watch", "create", "update", "delete"}

// dsSynced tells whether the member's DaemonSet cache is started and full.
func (m *memberSync) dsSynced() bool {
	return m.dsStarted.Load() && m.dsInformer.HasSynced()
}

// daemonSetsReady starts the member's DaemonSet informer once the member
// lets the tree manage DaemonSets, and tells whether its cache is ready;
// why, when not empty, says what keeps them from running there.
func (m *memberSync) daemonSetsReady(ctx context.Context) (ok bool, why string) {
	if m.dsStarted.Load() {
		return m.dsInformer.HasSynced(), ""
	}
	if last := m.dsChecked.Load(); last != 0 && time.Since(time.Unix(0, last)) < dsRecheck {
		return false, m.dsDenied.Load().(string)
	}
	m.dsChecked.Store(time.Now().UnixNano())
	denied, err := m.daemonSetRights(ctx)
	switch {
	case err != nil:
		m.dsDenied.Store("")
		m.ctl.Log.Warn("member DaemonSet rights", "cluster", m.name, "err", err)
		return false, ""
	case len(denied) > 0:
		why := fmt.Sprintf("Kosmos's identity in the member may not %s DaemonSets (apps); apply the current host-access RBAC in the member", strings.Join(denied, ", "))
		m.dsDenied.Store(why)
		return false, why
	}
	if m.dsStarted.CompareAndSwap(false, true) {
		m.dsf.Start(m.runCtx.Done())
		m.ctl.Log.Info("member DaemonSets watched", "cluster", m.name)
	}
	return false, ""
}

// daemonSetRights lists the dsVerbs the member denies the tree's identity.
func (m *memberSync) daemonSetRights(ctx context.Context) ([]string, error) {
	var denied []string
	for _, verb := range dsVerbs {
		r, err := m.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: verb, Group: "apps", Resource: "daemonsets"}}}, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("may the tree %s DaemonSets in member %s: %w", verb, m.name, err)
		}
		if !r.Status.Allowed {
			denied = append(denied, verb)
		}
	}
	return denied, nil
}
