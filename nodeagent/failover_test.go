package nodeagent

import (
	"testing"
	"time"
)

func TestObserve(t *testing.T) {
	cfg := FailoverConfig{Down: 3, Up: 2, Hold: time.Second}
	now := time.Unix(100, 0)
	run := func(h Health, rounds string) Health {
		for _, r := range rounds {
			h = Observe(h, r == '+', now, cfg)
		}
		return h
	}
	for _, c := range []struct {
		name   string
		start  Health
		rounds string // + reply, - miss
		down   bool
	}{
		{"fresh: up", Health{}, "", false},
		{"two misses: still up", Health{}, "--", false},
		{"three misses: down", Health{}, "---", true},
		{"misses broken by a reply: up", Health{}, "--+--", false},
		{"down, one reply: still down", Health{}, "---+", true},
		{"down, two replies: up", Health{}, "---++", false},
		{"down, flapping: stays down", Health{}, "---+-+-+-", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := run(c.start, c.rounds)
			if h.Down != c.down {
				t.Errorf("after %q: down %v, want %v (%+v)", c.rounds, h.Down, c.down, h)
			}
		})
	}
	if h := run(Health{}, "---++"); !h.UpSince.Equal(now) {
		t.Errorf("UpSince %v, want %v", h.UpSince, now)
	}
}

func TestChoose(t *testing.T) {
	cfg := FailoverConfig{Hold: 3 * time.Second}
	now := time.Unix(1000, 0)
	cands := []string{"g1", "g2", "g3"}
	down := Health{Down: true}
	fresh := Health{UpSince: now.Add(-time.Second)}       // back 1 s ago: not held
	settled := Health{UpSince: now.Add(-4 * time.Second)} // back 4 s ago: held
	for _, c := range []struct {
		name    string
		health  map[string]Health
		current string
		want    string
	}{
		{"all up, none yet: the first", nil, "", "g1"},
		{"all up, in use the first: stays", nil, "g1", "g1"},
		{"first down: the second", map[string]Health{"g1": down}, "g1", "g2"},
		{"first two down: the third", map[string]Health{"g1": down, "g2": down}, "g2", "g3"},
		{"all down: no change", map[string]Health{"g1": down, "g2": down, "g3": down}, "g2", "g2"},
		{"first back but not held: stay on the second", map[string]Health{"g1": fresh}, "g2", "g2"},
		{"first back and held: back to it", map[string]Health{"g1": settled}, "g2", "g1"},
		{"second down, first just back, third up: the third", map[string]Health{"g1": fresh, "g2": down}, "g2", "g3"},
		{"second down, first just back, third down: the first", map[string]Health{"g1": fresh, "g2": down, "g3": down}, "g2", "g1"},
		{"in use unknown (the plan changed): first held", map[string]Health{"g1": down}, "gone", "g2"},
		{"in use unknown, first only fresh: fresh one over none", map[string]Health{"g1": fresh, "g2": down, "g3": down}, "", "g1"},
		{"third in use, second held: back to the second, first down", map[string]Health{"g1": down, "g2": settled}, "g3", "g2"},
		{"no candidates", nil, "g1", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := cands
			if c.name == "no candidates" {
				cs = nil
			}
			if got := Choose(cs, c.health, c.current, now, cfg); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}
