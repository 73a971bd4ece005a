// Package benchstat holds the small statistics the project's benchmarks
// share.
package benchstat

import "slices"

// Median is the middle of xs (the mean of the two middles for an even
// count; 0 for none).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}
