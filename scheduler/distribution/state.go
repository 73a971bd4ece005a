package distribution

import (
	fwk "k8s.io/kube-scheduler/framework"

	"kosmos.io/kosmos/scheduler/policies"
	"kosmos.io/kosmos/scheduler/split"
)

const stateKey fwk.StateKey = Name

// decision is what PreFilter decided for a pod this cycle.
type decision struct {
	pol  *policies.Policy // nil: no policy governs the pod
	dec  split.Decision
	host string
	// refusal per refused cluster, built once per pod.
	refusal map[string]*fwk.Status
}

// Clone: the decision is not changed after PreFilter.
func (d *decision) Clone() fwk.StateData { return d }

// readState is this cycle's decision for a pod a policy governs.
func readState(state fwk.CycleState) (*decision, bool) {
	d, known := policyOf(state)
	return d, known && d.pol != nil
}

// policyOf is what PreFilter decided this cycle; known is false when it
// did not run.
func policyOf(state fwk.CycleState) (d *decision, known bool) {
	v, err := state.Read(stateKey)
	if err != nil {
		return nil, false
	}
	d, known = v.(*decision)
	return d, known
}

// MatchedPolicy is the policy this plugin's PreFilter matched to the pod
// in this cycle (nil: none governs it); known is false when the plugin did
// not run in this cycle (it is not in the profile), so the caller has to
// match the pod itself.
func MatchedPolicy(state fwk.CycleState) (pol *policies.Policy, known bool) {
	d, known := policyOf(state)
	if !known {
		return nil, false
	}
	return d.pol, true
}
