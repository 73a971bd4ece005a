package reconciler

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Condition types and reasons of a KosmosTopology's status (kstatus).
const (
	CondReady       = "Ready"
	CondReconciling = "Reconciling"
	CondStalled     = "Stalled"

	ReasonReconciled      = "Reconciled"
	ReasonProgressing     = "Progressing"
	ReasonInvalid         = "InvalidTopology"
	ReasonClustersFailing = "ClustersFailing"
	ReasonDeletionGuard   = "DeletionGuard"
)

// maxMessage keeps condition messages well inside the API's limit (32 KiB).
const maxMessage = 8 << 10

func clip(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage] + "\n… (truncated)"
}

// SetTopologyStatus computes the status for outcome o of generation gen.
// Reconciling and Stalled are present only while true, as kstatus expects;
// Ready is always present. Conditions keep their transition time while
// their status stays, so an unchanged outcome yields an equal status.
func SetTopologyStatus(st *v1alpha1.TopologyStatus, gen int64, o Outcome, now metav1.Time) {
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: clip(msg),
			ObservedGeneration: gen, LastTransitionTime: now,
		})
	}
	st.ObservedGeneration = gen
	switch {
	case o.Rejected != nil:
		msg := "topology rejected; the last good one stays in force:\n" + o.Rejected.Error()
		set(CondReady, metav1.ConditionFalse, ReasonInvalid, msg)
		set(CondStalled, metav1.ConditionTrue, ReasonInvalid, msg)
		meta.RemoveStatusCondition(&st.Conditions, CondReconciling)
		return // the clusters still hold the last good topology: keep their report
	case o.Progressing:
		msg := fmt.Sprintf("applying generation %d", gen)
		set(CondReady, metav1.ConditionFalse, ReasonProgressing, msg)
		set(CondReconciling, metav1.ConditionTrue, ReasonProgressing, msg)
		meta.RemoveStatusCondition(&st.Conditions, CondStalled)
		return
	case o.Pass == nil:
		return
	}
	if o.Pass.Guard.Tripped {
		msg := o.Pass.Guard.Message()
		set(CondReady, metav1.ConditionFalse, ReasonDeletionGuard, msg)
		set(CondStalled, metav1.ConditionTrue, ReasonDeletionGuard, msg)
		meta.RemoveStatusCondition(&st.Conditions, CondReconciling)
		return // nothing was written: the clusters' last report stands
	}
	failing := setClusters(st, o.Pass)
	meta.RemoveStatusCondition(&st.Conditions, CondReconciling)
	if len(failing) > 0 {
		msg := fmt.Sprintf("%d of %d clusters failing: %s (see status.clusters); the others are reconciled", len(failing), len(st.Clusters), strings.Join(failing, ", "))
		set(CondReady, metav1.ConditionFalse, ReasonClustersFailing, msg)
		set(CondStalled, metav1.ConditionTrue, ReasonClustersFailing, msg)
		return
	}
	if err := o.Pass.InventoryErr; err != nil {
		msg := "the clusters are reconciled, but " + err.Error()
		set(CondReady, metav1.ConditionFalse, ReasonClustersFailing, msg)
		set(CondStalled, metav1.ConditionTrue, ReasonClustersFailing, msg)
		return
	}
	set(CondReady, metav1.ConditionTrue, ReasonReconciled, fmt.Sprintf("%d clusters hold the desired state", st.ClusterCount))
	meta.RemoveStatusCondition(&st.Conditions, CondStalled)
}

func statusEqual(a, b v1alpha1.TopologyStatus) bool { return equality.Semantic.DeepEqual(a, b) }

// setClusters fills the per-cluster status from a pass and returns the
// clusters that failed (those that left and are pending included).
func setClusters(st *v1alpha1.TopologyStatus, rep *Report) (failing []string) {
	st.ClusterCount = 0
	st.Clusters = nil
	for _, c := range rep.Clusters {
		if c.Forgotten {
			continue
		}
		if !c.Leaving {
			st.ClusterCount++
		}
		cs := v1alpha1.ClusterStatus{
			Name:      c.Name,
			Reachable: c.Err == nil,
			Objects:   int32(len(c.Result.Created) + len(c.Result.Updated) + len(c.Result.Unchanged)),
		}
		if c.Err != nil {
			cs.Message = clip(c.Err.Error())
			failing = append(failing, c.Name)
		}
		st.Clusters = append(st.Clusters, cs)
	}
	return failing
}
