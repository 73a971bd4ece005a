package desired

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// agentEvidence is what an agent's gateway report says beyond the
// candidate in use (agentGateways): per cluster it gave an answer for
// (reported), the candidates its probes find down (GatewayChoice.Down,
// merged over its devices) and whether the candidate in use is unproven
// (some device has had no answer from it yet, or finds it down); and per
// cluster whose devices (families) chose differently, what each chose
// ("vx-bridge b1, vx-bridge-6 b2"). Agents of earlier releases report
// neither Down nor Answered: nothing is unproven. It is pure.
func agentEvidence(gs []v1alpha1.GatewayChoice, reported map[string]string) (down map[string][]string, unproven map[string]bool, split map[string]string) {
	byCluster := map[string][]v1alpha1.GatewayChoice{}
	for _, g := range gs {
		byCluster[g.Cluster] = append(byCluster[g.Cluster], g)
	}
	for cluster, cs := range byCluster {
		active, ok := reported[cluster]
		if !ok {
			if len(cs) < 2 {
				continue
			}
			slices.SortFunc(cs, func(a, b v1alpha1.GatewayChoice) int { return cmp.Compare(a.Device, b.Device) })
			var parts []string
			for _, c := range cs {
				parts = append(parts, strings.TrimSpace(fmt.Sprintf("%s %s", c.Device, c.Active)))
			}
			if split == nil {
				split = map[string]string{}
			}
			split[cluster] = strings.Join(parts, ", ")
			continue
		}
		var ds []string
		bad := false
		for _, c := range cs {
			ds = append(ds, c.Down...)
			if (c.Answered != nil && !*c.Answered) || slices.Contains(c.Down, active) {
				bad = true
			}
		}
		if len(ds) > 0 {
			if down == nil {
				down = map[string][]string{}
			}
			slices.Sort(ds)
			down[cluster] = slices.Compact(ds)
		}
		if bad {
			if unproven == nil {
				unproven = map[string]bool{}
			}
			unproven[cluster] = true
		}
	}
	return down, unproven, split
}
