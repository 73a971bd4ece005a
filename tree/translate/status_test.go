package translate

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestSetClusterStatus walks a Cluster through connecting, connected,
// unreachable and back, checking what kstatus makes of each.
func TestSetClusterStatus(t *testing.T) {
	var st v1alpha1.ObjectStatus
	for _, step := range []struct {
		err    error
		ready  metav1.ConditionStatus
		reason string
		kstat  status.Status
	}{
		{ErrNotSynced, metav1.ConditionFalse, ReasonConnecting, status.InProgressStatus},
		{nil, metav1.ConditionTrue, ReasonConnected, status.CurrentStatus},
		{errors.New("probe: context deadline exceeded"), metav1.ConditionFalse, ReasonUnreachable, status.FailedStatus},
		{nil, metav1.ConditionTrue, ReasonConnected, status.CurrentStatus},
	} {
		SetClusterStatus(&st, 3, step.err, metav1.Now())
		c := meta.FindStatusCondition(st.Conditions, "Ready")
		if c == nil || c.Status != step.ready || c.Reason != step.reason || st.ObservedGeneration != 3 {
			t.Fatalf("after %v: Ready %+v", step.err, c)
		}
		cl := &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "m", Generation: 3}, Status: st}
		cl.APIVersion, cl.Kind = "kosmos.io/v1alpha1", "Cluster"
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cl)
		if err != nil {
			t.Fatal(err)
		}
		res, err := status.Compute(&unstructured.Unstructured{Object: u})
		if err != nil || res.Status != step.kstat {
			t.Errorf("after %v: kstatus %v (%v), want %v", step.err, res, err, step.kstat)
		}
	}
}
