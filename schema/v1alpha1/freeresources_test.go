package v1alpha1

import (
	"fmt"
	"testing"
)

func TestSummarizeFree(t *testing.T) {
	nodes := []FreeNode{
		{CPUMilli: 4000, MemoryBytes: 1 << 30, Pods: 10},
		{CPUMilli: 1000, MemoryBytes: 8 << 30, Pods: 10},
		{CPUMilli: 900, MemoryBytes: 4 << 30, Pods: 5},   // beaten by the second
		{CPUMilli: 8000, MemoryBytes: 16 << 30, Pods: 0}, // full: no pod slot
	}
	s := SummarizeFree(nodes)
	if got := fmt.Sprint(s.Nodes); got != fmt.Sprint([]FreeNode{nodes[0], nodes[1]}) {
		t.Errorf("summary %s", got)
	}
	for _, tc := range []struct {
		cpu, mem int64
		fits     bool
	}{
		{3000, 1 << 30, true},
		{1000, 6 << 30, true},
		{3000, 6 << 30, false}, // fits the sum of two nodes, not one
		{9000, 0, false},
	} {
		if got := s.Fits(tc.cpu, tc.mem); got != tc.fits {
			t.Errorf("Fits(%d, %d) = %v", tc.cpu, tc.mem, got)
		}
	}
	many := make([]FreeNode, 100)
	for i := range many {
		many[i] = FreeNode{CPUMilli: int64(i), MemoryBytes: int64(100 - i), Pods: 1}
	}
	if n := len(SummarizeFree(many).Nodes); n != MaxFreeNodes {
		t.Errorf("summary of 100 incomparable nodes has %d entries, want %d", n, MaxFreeNodes)
	}
}
