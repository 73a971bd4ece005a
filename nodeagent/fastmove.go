package nodeagent

import (
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Design notes: the route-only fast path of a gateway move.
//
// Every gateway candidate is a hot standby: the derivation
// (peering.DeriveWith) gives every candidate its FDB and neighbour entries
// whatever the choice, and the choice picks only where the routes go (the
// chosen remote candidate, or the chosen sibling of a candidate node). So a
// move changes routes only; what else follows the choice (a candidate's
// transit routing, peering.TransitOf) is written by the After hook of the
// full pass. The full pass reads everything the agent owns (links,
// addresses, routes, entries, every iptables table, sysctls, offloads);
// on a loaded node that read alone can take most of the failover budget.
//
// So when the choice changed, Run first moves the routes alone: it reads
// only the agent's routes and the names of its devices (RouteReader),
// replaces the next hop of each destination it already routes whose route
// the new config changes, toward a next hop the held config keeps entries
// for (MoveOps: it never adds or deletes a destination, so it never
// touches another owner's), and writes them. Then it runs the full pass as
// always, which finds the routes written and does everything else.

// RouteReader is a Kernel that can read its routes alone, cheaply: the
// fast path of a gateway move needs it (a Kernel without it takes the full
// pass only).
type RouteReader interface {
	ReadRoutes() (RouteView, error)
}

// RouteView is what the fast path reads: the agent's devices (names) and
// its routes.
type RouteView struct {
	Devices []string
	Routes  []Route
}

// MoveOps returns the route writes that move the agent's routes (have)
// to the next hops of want, the routes of the new desired state, for the
// fast path of a gateway move: a replace for each destination the agent
// already routes whose route in want differs (another next hop, another
// device) and whose device exists. That is all a move is. A destination
// the agent does not route yet, or no longer wants, waits for the full
// pass, which adds it after its addresses, entries and chains, and checks
// it against the host's addresses; a route on a device that does not exist
// yet waits too (its old route stays until then), and so does one whose
// next hop is not among known, the next hops the config the kernel holds
// already keeps neighbour entries for (hopKey; every gateway candidate
// has them: it is a hot standby): a next hop new to the plan comes with
// entries only the full pass writes. Another owner's destination is never
// touched: the agent routes only its own. It is pure.
func MoveOps(have RouteView, want []Route, known map[string]bool) []Op {
	devs := map[string]bool{}
	for _, d := range have.Devices {
		devs[d] = true
	}
	cur := index(have.Routes, func(r Route) string { return r.Dst })
	var ops []Op
	for _, d := range want {
		if c, ok := cur[d.Dst]; ok && c != d && devs[d.Dev] && known[hopKey(d.Dev, d.Via)] {
			ops = append(ops, Op{Kind: OpSet, Route: &d})
		}
	}
	return ops
}

// hopKey names a next hop on a device, its address in canonical form.
func hopKey(dev, via string) string {
	if a, err := netip.ParseAddr(via); err == nil {
		via = a.String()
	}
	return dev + "|" + via
}

// knownHops are the next hops spec keeps neighbour entries for (hopKey).
func knownHops(spec *v1alpha1.NodeConfigSpec) map[string]bool {
	out := map[string]bool{}
	if spec == nil {
		return out
	}
	for _, n := range spec.Neighbors {
		out[hopKey(n.Device, n.IP)] = true
	}
	return out
}

// withMove is last, the config the kernel holds, with the routes of the
// destinations it routes taken from spec, the new config, when spec is
// refused whole after the fast path moved them: the kernel keeps the last
// good config and the move (next hops of destinations last already
// accepted, toward next hops last keeps entries for, as MoveOps), and the
// passes that follow keep both, instead of putting the routes back on the
// candidate that failed. Nil last, or a result that does not validate, is
// last. Pure.
func withMove(last, spec *v1alpha1.NodeConfigSpec) *v1alpha1.NodeConfigSpec {
	if last == nil || spec == nil {
		return last
	}
	next := index(spec.Routes, func(r v1alpha1.Route) string { return r.Dst })
	known := knownHops(last)
	held := last.DeepCopy()
	changed := false
	for i, r := range held.Routes {
		if n, ok := next[r.Dst]; ok && n != r && known[hopKey(n.Device, n.Via)] {
			held.Routes[i], changed = n, true
		}
	}
	if !changed || Validate(held) != nil {
		return last
	}
	return held
}

// moveRoutes is the effect of the fast path: it writes the routes of spec
// alone (MoveOps) and returns the writes made and the errors of those that
// failed. A spec that fails validation, or a Kernel that cannot read its
// routes alone, writes nothing (the full pass that follows reports it).
func moveRoutes(k Kernel, spec, last *v1alpha1.NodeConfigSpec) (applied int, err error) {
	rr, ok := k.(RouteReader)
	if !ok || Validate(spec) != nil {
		return 0, nil
	}
	have, err := rr.ReadRoutes()
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, op := range MoveOps(have, Desired(spec).Routes, knownHops(last)) {
		if err := k.Apply(op); err != nil && !errors.Is(err, errNoChange) {
			errs = append(errs, err)
			continue
		}
		applied++
	}
	return applied, errors.Join(errs...)
}

// fastMove runs the fast path for a choice made at decided (zero: unknown)
// and logs and measures it.
func fastMove(k Kernel, spec, last *v1alpha1.NodeConfigSpec, decided time.Time, log *slog.Logger) {
	start := time.Now()
	n, err := moveRoutes(k, spec, last)
	attrs := []any{"routes", n, "took", time.Since(start).Round(time.Microsecond)}
	if !decided.IsZero() {
		after := time.Since(decided)
		metricMoveSeconds.Observe(after.Seconds())
		attrs = append(attrs, "afterDecision", after.Round(time.Microsecond))
	}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	log.Info("gateway failover: routes written", attrs...)
}

// Moves returns the function Run's Options.Moves takes for this prober
// (nil for a nil prober): the version of the choice, and when the latest
// move was decided.
func (h *HA) Moves() func() (uint64, time.Time) {
	if h == nil {
		return nil
	}
	return h.moved
}

func (h *HA) moved() (uint64, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var at time.Time
	for _, c := range h.active {
		if c.since.After(at) {
			at = c.since
		}
	}
	return h.version, at
}

// metricMoveSeconds: from the decision to move to the routes written.
var metricMoveSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
	Name:    "kosmos_gateway_failover_routes_seconds",
	Help:    "Time from the prober's decision to move to another gateway candidate to the agent's routes written (the fast path, before the full pass).",
	Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
})

// ReadRoutes, on the fake, returns its devices and routes.
func (f *FakeKernel) ReadRoutes() (RouteView, error) {
	v := RouteView{Routes: slices.Clone(f.S.Routes)}
	for _, l := range f.S.Links {
		v.Devices = append(v.Devices, l.Name)
	}
	return v, nil
}
