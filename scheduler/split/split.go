package split

import (
	"cmp"
	"slices"
	"strconv"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// LargestRemainder splits total over weights: each share is the floor of
// its exact quota, and the replicas left over go to the largest remainders,
// ties to the earlier entry. 3 at 1:1 is 2:1, never 3:0; 10 at 2:1:1 is
// 5:3:2. All-zero weights get nothing.
func LargestRemainder(total int, weights []int) []int {
	out := make([]int, len(weights))
	sum := 0
	for _, w := range weights {
		sum += max(w, 0)
	}
	if total <= 0 || sum == 0 {
		return out
	}
	type rem struct{ i, r int } // remainder as a numerator over sum
	rems := make([]rem, 0, len(weights))
	given := 0
	for i, w := range weights {
		w = max(w, 0)
		out[i] = total * w / sum
		given += out[i]
		if w > 0 {
			rems = append(rems, rem{i, total * w % sum})
		}
	}
	slices.SortStableFunc(rems, func(a, b rem) int { return cmp.Compare(b.r, a.r) })
	for k := 0; given < total; k++ {
		out[rems[k%len(rems)].i]++
		given++
	}
	return out
}

// Domain is one placement target: a cluster (the host's own nodes are the
// host cluster) with its region and zone.
type Domain struct {
	Cluster, Region, Zone string
}

// Policy is what the decision needs of a DistributionPolicy.
type Policy struct {
	Targets []v1alpha1.ClusterPlacement
	Domains []Domain
	Spread  *v1alpha1.Spread
}

// FromObject reads a DistributionPolicy object. The host joins the targets
// (at weight 1) when includeHost is set and it is not listed.
func FromObject(p *v1alpha1.DistributionPolicy) Policy {
	out := Policy{Targets: slices.Clone(p.Spec.Placement.Clusters), Spread: p.Spec.Placement.Spread}
	for _, d := range p.Spec.Domains {
		out.Domains = append(out.Domains, Domain{Cluster: d.Cluster, Region: d.Region, Zone: d.Zone})
	}
	host := p.Spec.HostCluster
	if p.Spec.Placement.IncludeHost && host != "" && !slices.ContainsFunc(out.Targets, func(c v1alpha1.ClusterPlacement) bool { return c.Name == host }) {
		one := int32(1)
		t := v1alpha1.ClusterPlacement{Name: host}
		if fixedMode(out.Targets) {
			t.Replicas = new(int32) // fixed mode: the host takes overflow only
		} else {
			t.Weight = &one
		}
		out.Targets = append(out.Targets, t)
		if !slices.ContainsFunc(out.Domains, func(d Domain) bool { return d.Cluster == host }) {
			out.Domains = append(out.Domains, Domain{Cluster: host})
		}
	}
	return out
}

func fixedMode(ts []v1alpha1.ClusterPlacement) bool {
	return slices.ContainsFunc(ts, func(c v1alpha1.ClusterPlacement) bool { return c.Replicas != nil })
}

// Want is how many of total replicas each target cluster should hold.
// Weights: largest remainder. Fixed counts: each cluster its count, in
// order, until total runs out; replicas beyond their sum are shared evenly
// (largest remainder at equal weights). Under Spread, Want holds only the
// fixed counts (the rest is placed by Allowed's spread rule).
func (p Policy) Want(total int) map[string]int {
	out := map[string]int{}
	if fixedMode(p.Targets) {
		left := total
		for _, t := range p.Targets {
			n := min(int(ptrOr(t.Replicas, 0)), left)
			out[t.Name] = n
			left -= n
		}
		if left > 0 && p.Spread == nil {
			even := make([]int, len(p.Targets))
			for i := range even {
				even[i] = 1
			}
			for i, n := range LargestRemainder(left, even) {
				out[p.Targets[i].Name] += n
			}
		}
		return out
	}
	if p.Spread != nil {
		return out
	}
	weights := make([]int, len(p.Targets))
	for i, t := range p.Targets {
		weights[i] = int(ptrOr(t.Weight, 1))
	}
	for i, n := range LargestRemainder(total, weights) {
		out[p.Targets[i].Name] = n
	}
	return out
}

func ptrOr(p *int32, d int32) int32 {
	if p == nil {
		return d
	}
	return *p
}

// Decision says which clusters may take the next replica and how good each
// is (higher is better), with the reason the others are refused.
type Decision struct {
	Allowed map[string]bool
	// Score per target cluster, 0..100.
	Score map[string]int64
	// Why, per refused cluster, for the scheduler's message.
	Why map[string]string
}

// Next decides where replica number placedTotal+1 of total may go, given
// how many each cluster holds now (placed). Clusters short of their share
// are allowed; when none is short (surge, or total unknown), those furthest
// below their share are. Under Spread, fixed counts are filled first and
// then a domain (region, zone or cluster) is allowed when one more replica
// there keeps every pair of domains within maxSkew. Clusters the policy
// does not target are never allowed.
func (p Policy) Next(total int, placed map[string]int) Decision {
	d := Decision{Allowed: map[string]bool{}, Score: map[string]int64{}, Why: map[string]string{}}
	if len(p.Targets) == 0 {
		return d
	}
	want := p.Want(total)
	// Fixed (or weighted) shares with a deficit come first.
	deficit, best := p.deficits(want, placed)
	if p.Spread == nil || best > 0 {
		p.byShare(d, deficit, best, want)
	} else {
		p.bySpread(d, placed)
	}
	return d
}

// deficits is, per target with a share (every target without Spread, the
// fixed ones with it), the replicas it lacks (negative: it holds more),
// and the largest of them.
func (p Policy) deficits(want, placed map[string]int) (deficit map[string]int, best int) {
	first := true
	deficit = map[string]int{}
	for _, t := range p.Targets {
		if p.Spread != nil && t.Replicas == nil {
			continue
		}
		deficit[t.Name] = want[t.Name] - placed[t.Name]
		if first || deficit[t.Name] > best {
			best, first = deficit[t.Name], false
		}
	}
	return deficit, best
}

// byShare allows the targets short of their share, or, when none is
// (best <= 0), those furthest below it.
func (p Policy) byShare(d Decision, deficit map[string]int, best int, want map[string]int) {
	for _, t := range p.Targets {
		df, ok := deficit[t.Name]
		if !ok {
			continue
		}
		if (best > 0 && df > 0) || (best <= 0 && df == best) {
			d.Allowed[t.Name] = true
		} else {
			d.Why[t.Name] = "holds its share"
		}
		d.Score[t.Name] = scoreOf(df, want[t.Name])
	}
}

// domainOf is the Spread domain of a cluster: its region or zone from the
// policy's domains, or the cluster itself.
func (p Policy) domainOf(c string) string {
	for _, dm := range p.Domains {
		if dm.Cluster == c {
			switch p.Spread.By {
			case v1alpha1.SpreadByRegion:
				return dm.Region
			case v1alpha1.SpreadByZone:
				return dm.Zone
			}
		}
	}
	return c
}

// bySpread allows the targets whose domain can take one more replica with
// every pair of domains staying within maxSkew.
func (p Policy) bySpread(d Decision, placed map[string]int) {
	count := map[string]int{}
	for _, t := range p.Targets {
		count[p.domainOf(t.Name)] += 0
	}
	for c, n := range placed {
		if slices.ContainsFunc(p.Targets, func(t v1alpha1.ClusterPlacement) bool { return t.Name == c }) {
			count[p.domainOf(c)] += n
		}
	}
	lo := -1
	for _, n := range count {
		if lo < 0 || n < lo {
			lo = n
		}
	}
	skew := int(max(p.Spread.MaxSkew, 1))
	for _, t := range p.Targets {
		n := count[p.domainOf(t.Name)]
		// After placing here: this domain has n+1, the smallest has lo
		// (or n+1 if this one was the only smallest).
		if n+1-lo <= skew {
			d.Allowed[t.Name] = true
		} else {
			d.Why[t.Name] = "would exceed maxSkew " + strconv.Itoa(skew) + " across " + string(p.Spread.By) + "s"
		}
		d.Score[t.Name] = int64(100 * (1 + lo) / (1 + n))
	}
}

// scoreOf maps a deficit onto 0..100: the larger the share still missing,
// the better.
func scoreOf(deficit, want int) int64 {
	if deficit <= 0 {
		return 0
	}
	return int64(100 * deficit / max(want, 1))
}
