package translate

import (
	"errors"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// ErrNotSynced says a member's caches are still filling: its virtual nodes
// stay as they are, and it is no failure while within the grace period.
var ErrNotSynced = errors.New("member caches not synced yet")

// Reasons of the Cluster object's conditions, as the tree reports them.
const (
	ReasonConnected   = "MemberConnected"
	ReasonConnecting  = "Connecting"
	ReasonUnreachable = "MemberUnreachable"
)

// SetClusterStatus computes the kstatus status of a Cluster object from
// the tree's last pass over it (err nil: connected and its virtual nodes
// written): Ready; Reconciling while its caches first fill; Stalled with
// the error otherwise. now stamps transitions.
func SetClusterStatus(st *v1alpha1.ObjectStatus, gen int64, err error, now metav1.Time) {
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen, LastTransitionTime: now})
	}
	st.ObservedGeneration = gen
	switch {
	case err == nil:
		set("Ready", metav1.ConditionTrue, ReasonConnected, "the member answers and its virtual nodes are up to date")
		meta.RemoveStatusCondition(&st.Conditions, "Reconciling")
		meta.RemoveStatusCondition(&st.Conditions, "Stalled")
	case errors.Is(err, ErrNotSynced):
		set("Ready", metav1.ConditionFalse, ReasonConnecting, "reading the member's nodes and pods")
		set("Reconciling", metav1.ConditionTrue, ReasonConnecting, "reading the member's nodes and pods")
		meta.RemoveStatusCondition(&st.Conditions, "Stalled")
	default:
		msg := err.Error()
		if len(msg) > 1024 {
			msg = msg[:1024] + "…"
		}
		set("Ready", metav1.ConditionFalse, ReasonUnreachable, msg)
		set("Stalled", metav1.ConditionTrue, ReasonUnreachable, msg)
		meta.RemoveStatusCondition(&st.Conditions, "Reconciling")
	}
}
