package peering

import (
	"cmp"
	"slices"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Settle chooses, per remote cluster, the shards a node derives from, so
// that a shard that is late (not yet written, or not yet seen by the
// agent's watch) never withdraws routes that are fine:
//
//   - A shard set is the objects of one cluster with the same spec.shards
//     n; it is complete when it holds every index 0..n-1. An object whose
//     spec.shard is outside 0..n-1 belongs to no set and is ignored.
//   - A cluster with a complete set uses it. With two (a re-split: the
//     reconciler writes the new set before it deletes the old one) it uses
//     the one it did not use before (the new one); without a previous
//     choice, the newest by creation time, then the one of more shards.
//   - A cluster without a complete set keeps the objects it used before
//     (prev; each at its current version where it is still listed), and
//     is named in held; if it used none before, it uses what
//     there is (a cluster that is joining: partial routes only add).
//   - A cluster with no object at all has left: it is not held.
//
// current and prev are what Select returns (one node's view); the result is
// sorted by name, like Select's. It is pure; the inputs are not modified.
func Settle(prev, current []v1alpha1.ClusterPeers) (use []v1alpha1.ClusterPeers, held []string) {
	byCluster := map[string][]v1alpha1.ClusterPeers{}
	for _, p := range current {
		byCluster[p.Spec.Cluster] = append(byCluster[p.Spec.Cluster], p)
	}
	prevBy := map[string][]v1alpha1.ClusterPeers{}
	for _, p := range prev {
		prevBy[p.Spec.Cluster] = append(prevBy[p.Spec.Cluster], p)
	}
	for _, cluster := range slicesSortedKeys(byCluster) {
		objs := byCluster[cluster]
		prevN := int32(0)
		if ps := prevBy[cluster]; len(ps) > 0 && complete(ps, ps[0].Spec.Shards) {
			prevN = ps[0].Spec.Shards
		}
		var sets []int32 // the shard counts with a complete set
		for _, p := range objs {
			n := p.Spec.Shards
			if !slices.Contains(sets, n) && complete(objs, n) {
				sets = append(sets, n)
			}
		}
		switch {
		case len(sets) > 0:
			n := pick(objs, sets, prevN)
			for _, p := range objs {
				if p.Spec.Shards == n && inRange(p) {
					use = append(use, p)
				}
			}
		case len(prevBy[cluster]) > 0:
			// The set used before, each shard at its current version
			// where it is still there.
			for _, old := range prevBy[cluster] {
				if i := slices.IndexFunc(objs, func(p v1alpha1.ClusterPeers) bool { return p.Name == old.Name }); i >= 0 {
					old = objs[i]
				}
				use = append(use, old)
			}
			held = append(held, cluster)
		default:
			use = append(use, objs...)
		}
	}
	slices.SortFunc(use, func(a, b v1alpha1.ClusterPeers) int { return cmp.Compare(a.Name, b.Name) })
	return use, held
}

func inRange(p v1alpha1.ClusterPeers) bool {
	return p.Spec.Shards >= 1 && p.Spec.Shard >= 0 && p.Spec.Shard < p.Spec.Shards
}

// complete says objs hold every shard 0..n-1 of a set of n.
func complete(objs []v1alpha1.ClusterPeers, n int32) bool {
	if n < 1 || int(n) > len(objs) {
		return false
	}
	seen := make([]bool, n)
	found := int32(0)
	for _, p := range objs {
		if p.Spec.Shards == n && inRange(p) && !seen[p.Spec.Shard] {
			seen[p.Spec.Shard] = true
			found++
		}
	}
	return found == n
}

// pick chooses among complete sets: one other than the set used before,
// then the newest, then the one of more shards.
func pick(objs []v1alpha1.ClusterPeers, sets []int32, prevN int32) int32 {
	if len(sets) == 1 {
		return sets[0]
	}
	newest := func(n int32) int64 {
		var t int64
		for _, p := range objs {
			if p.Spec.Shards == n {
				t = max(t, p.CreationTimestamp.Unix())
			}
		}
		return t
	}
	return slices.MaxFunc(sets, func(a, b int32) int {
		return cmp.Or(
			cmp.Compare(boolInt(a != prevN), boolInt(b != prevN)),
			cmp.Compare(newest(a), newest(b)),
			cmp.Compare(a, b))
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func slicesSortedKeys(m map[string][]v1alpha1.ClusterPeers) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
