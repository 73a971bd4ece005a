package reconciler

import (
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/reconciler/apply"
	"kosmos.io/kosmos/schema/v1alpha1"
)

func TestSetTopologyStatus(t *testing.T) {
	ok := &Report{Clusters: []ClusterReport{{Name: "a", Result: apply.Result{Unchanged: []string{"x", "y"}}}, {Name: "b"}}}
	failing := &Report{Clusters: []ClusterReport{{Name: "a"}, {Name: "b", Err: errors.New("cluster b: connection refused")}}}
	type want struct {
		ready                metav1.ConditionStatus
		reason               string
		reconciling, stalled bool
		clusters             int
	}
	for _, tc := range []struct {
		name string
		o    Outcome
		want want
	}{
		{"progressing", Outcome{Progressing: true}, want{metav1.ConditionFalse, ReasonProgressing, true, false, 0}},
		{"reconciled", Outcome{Pass: ok}, want{metav1.ConditionTrue, ReasonReconciled, false, false, 2}},
		{"clusters failing", Outcome{Pass: failing, PassErr: failing.Clusters[1].Err}, want{metav1.ConditionFalse, ReasonClustersFailing, false, true, 2}},
		{"rejected", Outcome{Rejected: errors.New("x.yaml: spec.clusters[0].role: bad")}, want{metav1.ConditionFalse, ReasonInvalid, false, true, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st v1alpha1.TopologyStatus
			SetTopologyStatus(&st, 7, tc.o, metav1.Now())
			r := meta.FindStatusCondition(st.Conditions, CondReady)
			if st.ObservedGeneration != 7 || r == nil || r.Status != tc.want.ready || r.Reason != tc.want.reason || r.ObservedGeneration != 7 {
				t.Errorf("Ready = %+v (observed %d)", r, st.ObservedGeneration)
			}
			if got := meta.IsStatusConditionTrue(st.Conditions, CondReconciling); got != tc.want.reconciling {
				t.Errorf("Reconciling = %v", got)
			}
			if got := meta.IsStatusConditionTrue(st.Conditions, CondStalled); got != tc.want.stalled {
				t.Errorf("Stalled = %v", got)
			}
			for _, c := range st.Conditions {
				if c.Status == metav1.ConditionFalse && c.Type != CondReady {
					t.Errorf("%s present while false; kstatus wants it absent", c.Type)
				}
			}
			if len(st.Clusters) != tc.want.clusters {
				t.Errorf("clusters = %+v", st.Clusters)
			}
		})
	}

	// A rejection keeps the clusters' report of the topology still in force;
	// the same outcome again changes nothing (no status write).
	var st v1alpha1.TopologyStatus
	SetTopologyStatus(&st, 1, Outcome{Pass: ok}, metav1.Now())
	SetTopologyStatus(&st, 2, Outcome{Rejected: errors.New("bad")}, metav1.Now())
	if len(st.Clusters) != 2 || st.Clusters[0].Objects != 2 || !st.Clusters[0].Reachable {
		t.Errorf("rejection dropped the clusters' report: %+v", st.Clusters)
	}
	again := *st.DeepCopy()
	SetTopologyStatus(&again, 2, Outcome{Rejected: errors.New("bad")}, metav1.NewTime(time.Now().Add(time.Hour)))
	if !statusEqual(st, again) {
		t.Errorf("the same outcome changed the status:\n%+v\n%+v", st, again)
	}
	// A long problem list is clipped inside the API's limit.
	long := make([]byte, 40<<10)
	for i := range long {
		long[i] = 'x'
	}
	SetTopologyStatus(&st, 3, Outcome{Rejected: errors.New(string(long))}, metav1.Now())
	if m := meta.FindStatusCondition(st.Conditions, CondStalled).Message; len(m) > 32<<10 {
		t.Errorf("message of %d bytes exceeds the API limit", len(m))
	}
}
