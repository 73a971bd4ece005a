package main

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestHAFlags: --probe-interval 0 still gives a prober (a passive one that
// answers the probes of others); a negative --probe-timeout, one above 10s, or a port out
// of range is refused.
func TestHAFlags(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := haFlags{port: 4801, interval: 0}.newHA(log)
	if err != nil || h == nil {
		t.Errorf("--probe-interval 0: prober %v, error %v; want a passive prober", h, err)
	}
	if _, err := (haFlags{port: 4801, interval: 100 * time.Millisecond, timeout: -time.Second}).newHA(log); err == nil {
		t.Error("a negative --probe-timeout was accepted")
	}
	if _, err := (haFlags{port: 4801, interval: 100 * time.Millisecond, timeout: time.Hour}).newHA(log); err == nil {
		t.Error("--probe-timeout 1h was accepted")
	}
	if _, err := (haFlags{port: 4801, interval: 100 * time.Millisecond, timeout: 10 * time.Second}).newHA(log); err != nil {
		t.Errorf("--probe-timeout 10s: %v", err)
	}
	if _, err := (haFlags{port: 0, interval: 100 * time.Millisecond}).newHA(log); err == nil {
		t.Error("--probe-port 0 was accepted")
	}
}
