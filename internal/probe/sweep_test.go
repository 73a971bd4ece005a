package probe

import (
	"testing"
	"time"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestStaleProbeObject: only another run's probe objects older than the
// deadline are stale; this run's, a younger run's, and anything without the
// probe's labels are not.
func TestStaleProbeObject(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	probe := func(run string) map[string]string {
		return map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, "app.kubernetes.io/name": "kosmos-probe", LabelRun: run}
	}
	old := now.Add(-6 * time.Minute)
	for _, c := range []struct {
		name    string
		labels  map[string]string
		created time.Time
		want    bool
	}{
		{"another run, older than the deadline", probe("dead"), old, true},
		{"another run, younger", probe("live"), now.Add(-4 * time.Minute), false},
		{"this run", probe("mine"), old, false},
		{"no run label", map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, "app.kubernetes.io/name": "kosmos-probe"}, old, false},
		{"not Kosmos's", map[string]string{"app.kubernetes.io/name": "kosmos-probe", LabelRun: "dead"}, old, false},
		{"no creation time", probe("dead"), time.Time{}, false},
	} {
		if got := staleProbeObject(c.labels, c.created, now, "mine", 5*time.Minute); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
