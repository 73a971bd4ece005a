package tree

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kosmos.io/kosmos/tree/translate"
)

// TestRenamed: a OneToOne node an earlier version named
// (kosmos-<cluster>-<node>) is known as renamed while the node of today's
// name for the same member node is wanted, so it is cordoned but its pods
// are not evicted; a node no member wants any more is not.
func TestRenamed(t *testing.T) {
	node := func(name, cluster, member string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelCluster: cluster, translate.LabelMemberNode: member}}}
	}
	want := map[string]bool{translate.VirtualNodeName("b", "n1"): true}
	for _, tc := range []struct {
		n    *corev1.Node
		want bool
	}{
		{node("kosmos-b-n1", "b", "n1"), true},                         // the earlier name, today's node is wanted
		{node("kosmos-b-n2", "b", "n2"), false},                        // its member node is gone: drained
		{node(translate.VirtualNodeName("b", "n1"), "b", "n1"), false}, // today's name
		{node("kosmos-b", "b", ""), false},                             // Aggregate
	} {
		if got := renamed(tc.n, want); got != tc.want {
			t.Errorf("renamed(%s) = %v, want %v", tc.n.Name, got, tc.want)
		}
	}
}
