package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// Runner is how probes run: real pods through the API (PodRunner) or the
// sandbox's network namespaces. Run calls Start once, then Probe once,
// then Close once (always, with a fresh context).
type Runner interface {
	// Start brings up the probe endpoints of every cluster and returns
	// those that came up (their addresses known, their echo servers
	// answering), with an error naming the clusters where some did not.
	Start(ctx context.Context) ([]Endpoint, error)
	// Probe runs the probes and returns one result per probe, in order.
	// Each probe waits for its answer at most perProbe.
	Probe(ctx context.Context, probes []Probe, perProbe time.Duration) []Result
	// Close removes everything Start created. ctx is a fresh one: Close
	// runs also after the caller's context was cancelled.
	Close(ctx context.Context) error
}

// Options of Run.
type Options struct {
	// Timeout bounds the whole run (endpoints: half of it, probes), not
	// the cleanup.
	Timeout time.Duration
	// PerProbe bounds one probe (default 3 s).
	PerProbe time.Duration
	// Protos to probe (default all).
	Protos []Proto
	// Services: also probe exported services' addresses (services.go),
	// when the runner can (a ServiceRunner).
	Services bool
}

// Run probes the topology's clusters through r and returns the rows of
// the check table: the endpoints, then Checks. Whatever happens, it closes
// r with a fresh context (cleanup also on Ctrl-C). The error is only for a
// cancelled ctx: failures are rows.
func Run(ctx context.Context, t *v1alpha1.KosmosTopology, r Runner, o Options) (checks []check.Check, err error) {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.PerProbe <= 0 {
		o.PerProbe = 3 * time.Second
	}
	if len(o.Protos) == 0 {
		o.Protos = Protos
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if cerr := r.Close(cctx); cerr != nil {
			checks = append(checks, check.Check{Name: "probe cleanup", Result: "FAIL", Detail: cerr.Error()})
		}
	}()
	rctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	// The endpoints get half the time: the clusters whose probe pods came up
	// are still probed when another's never do.
	sctx, scancel := context.WithTimeout(rctx, o.Timeout/2)
	eps, serr := r.Start(sctx)
	scancel()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	row := check.Check{Name: "probe endpoints", Result: "PASS", Detail: fmt.Sprintf("%d up", len(eps))}
	if serr != nil {
		row.Result, row.Detail = "FAIL", serr.Error()
	}
	checks = append(checks, row)
	results := Unreached(t, eps)
	probes := Plan(t, eps, o.Protos)
	var unanswered []Result // service pairs without a VIP, after the others
	if sr, ok := r.(ServiceRunner); ok && o.Services {
		// The imports get half of what is left: the probes need the rest.
		budget := o.Timeout / 2
		if d, ok := rctx.Deadline(); ok {
			budget = time.Until(d) / 2
		}
		ictx, icancel := context.WithTimeout(rctx, budget)
		vips, noMCS, err := sr.ExportServices(ictx, eps)
		icancel()
		if ctx.Err() != nil {
			return checks, ctx.Err()
		}
		checks = append(checks, ServicesRow(vips, noMCS, err))
		sp, failed := PlanServices(eps, vips, o.Protos)
		probes = append(probes, sp...)
		unanswered = failed
	}
	results = append(results, r.Probe(rctx, probes, o.PerProbe)...)
	results = append(results, unanswered...)
	checks = append(checks, Checks(results)...)
	if ctx.Err() != nil {
		return checks, ctx.Err()
	}
	return checks, nil
}

// SendAll sends the probes concurrently (send runs one, in whatever
// network it must) and collects their results in order.
func SendAll(ctx context.Context, probes []Probe, perProbe time.Duration, send func(ctx context.Context, p Probe) error) []Result {
	out := make([]Result, len(probes))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, p := range probes {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			pctx, cancel := context.WithTimeout(ctx, perProbe)
			defer cancel()
			out[i] = ResultOf(p, send(pctx, p))
		})
	}
	wg.Wait()
	return out
}

// ResultOf is the result of probe p that ended with err.
func ResultOf(p Probe, err error) Result {
	switch {
	case err == nil:
		return Result{Probe: p}
	case errors.Is(err, ErrICMPNotPermitted):
		return Result{Probe: p, Skip: err.Error()}
	}
	return Result{Probe: p, Err: shorten(err.Error())}
}

func shorten(s string) string {
	if len(s) > 100 {
		return s[:97] + "..."
	}
	return s
}

// Target is one probe of a `kosmos probe client`: "tcp:10.1.0.2".
type Target struct {
	Proto Proto
	Addr  netip.Addr
}

func (t Target) String() string { return string(t.Proto) + ":" + t.Addr.String() }

// ParseTarget reads "PROTO:ADDR" (icmp, tcp or udp; IPv4 or IPv6).
func ParseTarget(s string) (Target, error) {
	p, a, ok := strings.Cut(s, ":")
	if !ok {
		return Target{}, fmt.Errorf("probe target %q: want PROTO:ADDR, e.g. tcp:10.1.0.2", s)
	}
	switch Proto(p) {
	case ICMP, TCP, UDP:
	default:
		return Target{}, fmt.Errorf("probe target %q: protocol %q is not icmp, tcp or udp", s, p)
	}
	addr, err := netip.ParseAddr(a)
	if err != nil {
		return Target{}, fmt.Errorf("probe target %q: %w", s, err)
	}
	return Target{Proto(p), addr}, nil
}

// Answer is one line of a client's output: the target and, when it
// failed, why (Skip when it could not be tried).
type Answer struct {
	Target string `json:"t"`
	Err    string `json:"e,omitempty"`
	Skip   string `json:"s,omitempty"`
}

// Client probes the targets concurrently, each for at most perProbe, and
// returns the answers in order (what `kosmos probe client` prints).
func Client(ctx context.Context, targets []Target, port int, perProbe time.Duration) []Answer {
	probes := make([]Probe, len(targets))
	for i, t := range targets {
		probes[i] = Probe{Addr: t.Addr, Proto: t.Proto}
	}
	res := SendAll(ctx, probes, perProbe, func(ctx context.Context, p Probe) error { return Send(ctx, p.Proto, p.Addr, port) })
	out := make([]Answer, len(res))
	for i, r := range res {
		out[i] = Answer{Target: targets[i].String(), Err: r.Err, Skip: r.Skip}
	}
	return out
}

// ParseAnswers reads a client's output (JSON, one answer a line) into the
// results of probes, matched by target; a probe without an answer failed
// with missing.
func ParseAnswers(out string, probes []Probe, missing string) []Result {
	got := map[string]Answer{}
	for _, line := range strings.Split(out, "\n") {
		var a Answer
		if json.Unmarshal([]byte(line), &a) == nil && a.Target != "" {
			got[a.Target] = a
		}
	}
	res := make([]Result, len(probes))
	for i, p := range probes {
		a, ok := got[Target{p.Proto, p.Addr}.String()]
		switch {
		case !ok:
			res[i] = Result{Probe: p, Err: missing}
		default:
			res[i] = Result{Probe: p, Err: a.Err, Skip: a.Skip}
		}
	}
	return res
}
