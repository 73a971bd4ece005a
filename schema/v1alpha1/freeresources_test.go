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
		if got := s.Fits(tc.cpu, tc.mem, nil); got != tc.fits {
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

// TestFreeOtherResources: a GPU node small in CPU is not beaten by a large
// node without GPUs, and a pod asking a GPU fits only where one is free.
func TestFreeOtherResources(t *testing.T) {
	big := FreeNode{CPUMilli: 16000, MemoryBytes: 64 << 30, Pods: 100, Other: map[string]int64{"ephemeral-storage": 100 << 30}}
	gpu := FreeNode{CPUMilli: 4000, MemoryBytes: 16 << 30, Pods: 10, Other: map[string]int64{"nvidia.com/gpu": 1, "ephemeral-storage": 50 << 30}}
	used := FreeNode{CPUMilli: 2000, MemoryBytes: 8 << 30, Pods: 10, Other: map[string]int64{"nvidia.com/gpu": 0}}
	s := SummarizeFree([]FreeNode{big, gpu, used})
	if len(s.Nodes) != 2 {
		t.Fatalf("summary %v: want the big node and the GPU node (the used GPU node is beaten)", s.Nodes)
	}
	for _, tc := range []struct {
		name     string
		cpu, mem int64
		other    map[string]int64
		fits     bool
	}{
		{"one GPU", 1000, 1 << 30, map[string]int64{"nvidia.com/gpu": 1}, true},
		{"two GPUs", 1000, 1 << 30, map[string]int64{"nvidia.com/gpu": 2}, false},
		{"a GPU and much CPU", 8000, 1 << 30, map[string]int64{"nvidia.com/gpu": 1}, false},
		{"storage", 1000, 1 << 30, map[string]int64{"ephemeral-storage": 80 << 30}, true},
		{"hugepages nobody has", 1000, 1 << 30, map[string]int64{"hugepages-2Mi": 2 << 20}, false},
	} {
		if got := s.Fits(tc.cpu, tc.mem, tc.other); got != tc.fits {
			t.Errorf("%s: Fits = %v, want %v", tc.name, got, tc.fits)
		}
	}
}
