// Package poll waits in tests for a condition with a deadline, instead of
// sleeping: a test is as fast as the system under test and fails with what
// it was waiting for.
//
//	poll.Until(t, 30*time.Second, "the NodeConfig", func() bool { ... })
//	poll.NoError(t, 45*time.Second, "the member pod", func() error { ... })
package poll

import (
	"testing"
	"time"
)

// Interval is how often a condition is evaluated.
const Interval = 25 * time.Millisecond

// Until evaluates cond until it holds or d has passed, then fails the test
// naming what it waited for. It returns how long the wait took.
func Until(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return NoError(t, d, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

// NoError evaluates cond until it returns nil or d has passed, then fails
// the test with what it waited for and the last error (what was still
// missing). It returns how long the wait took.
func NoError(t testing.TB, d time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > d {
			if err == errNotYet {
				t.Fatalf("timed out after %s waiting for %s", d, what)
			}
			t.Fatalf("timed out after %s waiting for %s: %v", d, what, err)
		}
		<-tick.C
	}
}

type notYet struct{}

func (notYet) Error() string { return "not yet" }

var errNotYet error = notYet{}
