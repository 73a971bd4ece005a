package split

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

func TestLargestRemainder(t *testing.T) {
	for _, tc := range []struct {
		total   int
		weights []int
		want    []int
	}{
		{3, []int{1, 1}, []int{2, 1}},
		{10, []int{2, 1, 1}, []int{5, 3, 2}},
		{3, []int{2, 1, 1}, []int{1, 1, 1}},
		{1, []int{1, 1, 1}, []int{1, 0, 0}},
		{7, []int{0, 1}, []int{0, 7}},
		{5, []int{0, 0}, []int{0, 0}},
		{0, []int{1}, []int{0}},
		{100, []int{1, 1, 1}, []int{34, 33, 33}},
		{4, []int{1, 3}, []int{1, 3}},
	} {
		got := LargestRemainder(tc.total, tc.weights)
		if !slices.Equal(got, tc.want) {
			t.Errorf("LargestRemainder(%d, %v) = %v, want %v", tc.total, tc.weights, got, tc.want)
		}
	}
}

// FuzzLargestRemainder: the shares always add up, and no share is more than
// one away from its exact quota.
func FuzzLargestRemainder(f *testing.F) {
	f.Add(10, 2, 1, 1)
	f.Fuzz(func(t *testing.T, total, a, b, c int) {
		total, a, b, c = total%10000, a%1000, b%1000, c%1000
		ws := []int{a, b, c}
		got := LargestRemainder(total, ws)
		sum, wsum := 0, 0
		for i := range got {
			sum += got[i]
			wsum += max(ws[i], 0)
		}
		if total <= 0 || wsum == 0 {
			if sum != 0 {
				t.Fatalf("%v of %d over %v", got, total, ws)
			}
			return
		}
		if sum != total {
			t.Fatalf("shares %v add to %d, not %d", got, sum, total)
		}
		for i := range got {
			exact := float64(total) * float64(max(ws[i], 0)) / float64(wsum)
			if d := float64(got[i]) - exact; d <= -1 || d >= 1 {
				t.Fatalf("share %d of %v is %d, quota %.2f", i, ws, got[i], exact)
			}
		}
	})
}

func w(n int32) *int32 { return &n }

func weighted(names []string, ws ...int32) []v1alpha1.ClusterPlacement {
	var out []v1alpha1.ClusterPlacement
	for i, n := range names {
		out = append(out, v1alpha1.ClusterPlacement{Name: n, Weight: w(ws[i])})
	}
	return out
}

func allowed(d Decision) []string { return slices.Sorted(maps.Keys(d.Allowed)) }

// Placing replicas one by one with Next lands on the Want split.
func TestNextFillsTheSplit(t *testing.T) {
	abc := []string{"a", "b", "c"}
	for _, tc := range []struct {
		name  string
		p     Policy
		total int
		want  map[string]int
	}{
		{"weights 2:1:1, 10", Policy{Targets: weighted(abc, 2, 1, 1)}, 10, map[string]int{"a": 5, "b": 3, "c": 2}},
		{"weights 1:1, 3", Policy{Targets: weighted(abc[:2], 1, 1)}, 3, map[string]int{"a": 2, "b": 1}},
		{"fixed 2+1, 3", Policy{Targets: []v1alpha1.ClusterPlacement{{Name: "a", Replicas: w(2)}, {Name: "b", Replicas: w(1)}}}, 3, map[string]int{"a": 2, "b": 1}},
		{"fixed 2+1, 5: overflow shared", Policy{Targets: []v1alpha1.ClusterPlacement{{Name: "a", Replicas: w(2)}, {Name: "b", Replicas: w(1)}}}, 5, map[string]int{"a": 3, "b": 2}},
		{"spread by region, skew 1", Policy{
			Targets: weighted(abc, 1, 1, 1),
			Domains: []Domain{{"a", "eu", "eu-1"}, {"b", "us", "us-1"}, {"c", "us", "us-2"}},
			Spread:  &v1alpha1.Spread{By: v1alpha1.SpreadByRegion, MaxSkew: 1},
		}, 6, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			placed := map[string]int{}
			for i := range tc.total {
				d := tc.p.Next(tc.total, placed)
				al := allowed(d)
				if len(al) == 0 {
					t.Fatalf("replica %d: nowhere allowed (%v)", i+1, d.Why)
				}
				// the scheduler picks the best score among the allowed
				best := al[0]
				for _, c := range al {
					if d.Score[c] > d.Score[best] {
						best = c
					}
				}
				placed[best]++
			}
			if tc.want != nil && fmt.Sprint(placed) != fmt.Sprint(tc.want) {
				t.Errorf("placed %v, want %v", placed, tc.want)
			}
			if tc.p.Spread != nil {
				eu, us := placed["a"], placed["b"]+placed["c"]
				if eu-us > 1 || us-eu > 1 {
					t.Errorf("regions eu=%d us=%d exceed maxSkew 1 (%v)", eu, us, placed)
				}
			}
		})
	}
}

func TestNextRefusesWhatBreaksThePolicy(t *testing.T) {
	p := Policy{Targets: weighted([]string{"a", "b"}, 1, 1)}
	d := p.Next(4, map[string]int{"a": 2, "b": 1})
	if got := allowed(d); !slices.Equal(got, []string{"b"}) || d.Why["a"] == "" {
		t.Errorf("allowed %v, why %v; want only b", got, d.Why)
	}
	// Surge: everyone holds its share; the least over is allowed.
	d = p.Next(2, map[string]int{"a": 2, "b": 1})
	if got := allowed(d); !slices.Equal(got, []string{"b"}) {
		t.Errorf("surge: allowed %v, want b", got)
	}
	// A cluster the policy does not name is never allowed.
	if d.Allowed["z"] {
		t.Error("untargeted cluster allowed")
	}
	// includeHost adds the host at weight 1.
	obj := &v1alpha1.DistributionPolicy{Spec: v1alpha1.DistributionPolicyObjectSpec{
		HostCluster: "host",
		Placement:   v1alpha1.Placement{Clusters: weighted([]string{"a"}, 1), IncludeHost: true},
	}}
	if got := FromObject(obj).Want(4); got["host"] != 2 || got["a"] != 2 {
		t.Errorf("includeHost: %v", got)
	}
}
