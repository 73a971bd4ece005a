package nodeagent

import (
	"errors"
	"fmt"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Kernel is the agent's only way to the kernel. Read returns what the agent
// owns (its vx- devices and their addresses, routes of its protocol, FDB and
// neighbour entries of its devices, its chains); Apply performs one write and
// returns an error that names the object written, its device and the cause
// ("add route 10.20.1.0/24 via 220.168.2.11 dev vx-bridge: no such device").
// Implementations are not safe for concurrent use.
//
// Resolve makes a desired link concrete before it is compared with what the
// kernel holds: an "auto" or empty parent becomes the interface that holds
// the link's local address, an MTU of 0 that interface's MTU minus 50.
type Kernel interface {
	Read() (State, error)
	Apply(Op) error
	Resolve(*Link) error
}

// Result is what one Set did.
type Result struct {
	// Applied are the writes that succeeded, in order.
	Applied []Op
	// Failed are the writes that did not, with their errors.
	Failed []error
	// Warnings are writes the kernel refused that do not fail the pass
	// (an *OffloadRefusedError: a device that cannot change an offload).
	Warnings []error
}

// Set makes the kernel hold what spec asks for and nothing else of the
// agent's. A spec that fails validation is refused whole, before any write.
// Otherwise it reads the current state, computes the difference and applies
// it, adding before deleting; a failed write does not stop the others. Set is
// idempotent: with the kernel already matching, it makes no write.
func Set(k Kernel, spec *v1alpha1.NodeConfigSpec) (Result, error) {
	if err := Validate(spec); err != nil {
		return Result{}, err
	}
	return apply(k, Desired(spec))
}

// Teardown removes everything the agent owns: devices, routes, entries,
// chains and the jumps to them.
func Teardown(k Kernel) (Result, error) { return apply(k, State{}) }

func apply(k Kernel, desired State) (Result, error) {
	for i := range desired.Links {
		if err := k.Resolve(&desired.Links[i]); err != nil {
			return Result{}, fmt.Errorf("NodeConfig refused: device %s: %w", desired.Links[i].Name, err)
		}
	}
	current, err := k.Read()
	if err != nil {
		return Result{}, fmt.Errorf("read kernel state: %w", err)
	}
	if err := checkHost(desired, current.Others.Addrs); err != nil {
		return Result{}, err
	}
	desired, refused := withoutTaken(desired, current)
	res := Result{Failed: refused}
	for _, op := range Diff(current, desired) {
		err := k.Apply(op)
		if refused := (*OffloadRefusedError)(nil); errors.As(err, &refused) {
			res.Warnings = append(res.Warnings, err)
			continue
		}
		if errors.Is(err, errNoChange) {
			continue
		}
		if err != nil {
			res.Failed = append(res.Failed, err)
			continue
		}
		res.Applied = append(res.Applied, op)
	}
	return res, errors.Join(res.Failed...)
}

// RouteTakenError refuses a route whose destination the kernel's main table
// already routes for another owner (a CNI, a cloud VPC route, an admin). The
// agent never replaces such a route and never deletes it: replacing would
// make it the agent's (the kernel keys routes on table, destination and
// metric, not on protocol) and so delete it with the agent's routes later.
type RouteTakenError struct {
	Route Route
	// Owner describes the route that holds the destination.
	Owner string
}

func (e *RouteTakenError) Error() string {
	return fmt.Sprintf("add route %s via %s dev %s: refused: the kernel already routes %s for another owner (%s); Kosmos neither replaces nor deletes it",
		e.Route.Dst, e.Route.Via, e.Route.Dev, e.Route.Dst, e.Owner)
}

// withoutTaken drops from desired the routes whose destination another
// owner holds (current.Others) and that the agent does not hold already,
// and returns a RouteTakenError for each. It is pure.
func withoutTaken(desired, current State) (State, []error) {
	ours := index(current.Routes, func(r Route) string { return r.Dst })
	var errs []error
	kept := desired.Routes[:0:0]
	for _, r := range desired.Routes {
		owner, taken := current.Others.Routes[r.Dst]
		if _, held := ours[r.Dst]; taken && !held {
			errs = append(errs, &RouteTakenError{Route: r, Owner: owner})
			continue
		}
		kept = append(kept, r)
	}
	desired.Routes = kept
	return desired, errs
}
