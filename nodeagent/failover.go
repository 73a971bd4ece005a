package nodeagent

import (
	"slices"
	"time"
)

// Gateway HA, the pure part. An agent probes every gateway candidate it may
// send through (probe.go); each probe round gives each candidate a reply or
// a miss. A candidate goes down after Down consecutive misses and comes
// back up after Up consecutive replies. The candidate in use is the first
// live one in plan order, with hysteresis: the agent moves back to an
// earlier candidate only once it has been up for Hold, so a flapping link
// does not bounce traffic.

// FailoverConfig tunes the state machine.
type FailoverConfig struct {
	// Down is the number of consecutive misses that take a candidate down;
	// Up the number of consecutive replies that bring it back.
	Down, Up int
	// Hold is how long an earlier candidate must have been up before the
	// agent moves back to it.
	Hold time.Duration
}

func (c FailoverConfig) withDefaults() FailoverConfig {
	if c.Down <= 0 {
		c.Down = 3
	}
	if c.Up <= 0 {
		c.Up = 3
	}
	if c.Hold < 0 {
		c.Hold = 0
	}
	return c
}

// Health is what the agent knows of one candidate. The zero value is a
// candidate assumed up since ever: a fresh agent routes as the plan says
// until its probes say otherwise.
type Health struct {
	Down bool
	// Misses and Replies count the current run of each.
	Misses, Replies int
	// UpSince is when the candidate last came up (zero: up from the start).
	UpSince time.Time
}

// Observe folds one probe round into h: ok is a reply.
func Observe(h Health, ok bool, now time.Time, cfg FailoverConfig) Health {
	cfg = cfg.withDefaults()
	if ok {
		h.Misses = 0
		h.Replies++
		if h.Down && h.Replies >= cfg.Up {
			h.Down, h.UpSince = false, now
		}
		return h
	}
	h.Replies = 0
	h.Misses++
	if !h.Down && h.Misses >= cfg.Down {
		h.Down = true
	}
	return h
}

// Choose returns the candidate to send through, given the candidates in
// plan order, their health (absent: up) and the one in use ("" or unknown:
// none yet). The one in use stays while it is up, unless an earlier one
// has been up for the hold time; when it is down, the first candidate that
// is up and either later than it or up for the hold time takes over (a
// later one already live beats an earlier one just back); with none of
// those, the first one up; with none up at all, nothing changes (there is
// nothing better to move to).
func Choose(cands []string, health map[string]Health, current string, now time.Time, cfg FailoverConfig) string {
	cfg = cfg.withDefaults()
	if len(cands) == 0 {
		return ""
	}
	up := func(c string) bool { return !health[c].Down }
	held := func(c string) bool {
		h := health[c]
		return !h.Down && (h.UpSince.IsZero() || now.Sub(h.UpSince) >= cfg.Hold)
	}
	idx := slices.Index(cands, current)
	if idx < 0 {
		for _, c := range cands {
			if held(c) {
				return c
			}
		}
		for _, c := range cands {
			if up(c) {
				return c
			}
		}
		return cands[0]
	}
	if up(current) {
		for _, c := range cands[:idx] {
			if held(c) {
				return c
			}
		}
		return current
	}
	for i, c := range cands {
		if i != idx && up(c) && (i > idx || held(c)) {
			return c
		}
	}
	for _, c := range cands {
		if up(c) {
			return c
		}
	}
	return current
}
