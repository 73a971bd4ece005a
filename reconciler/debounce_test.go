package reconciler

import (
	"context"
	"testing"
	"time"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestDebounceHasAMaximum: events every 20ms (quiet never comes) delay the
// pass by at most the maximum.
func TestDebounceHasAMaximum(t *testing.T) {
	trigger := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				select {
				case trigger <- struct{}{}:
				default:
				}
			}
		}
	}()
	start := time.Now()
	done := make(chan struct{})
	go func() { debounce(ctx, trigger, 100*time.Millisecond, 500*time.Millisecond); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a steady stream of events starved the pass")
	}
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Errorf("debounce returned after %s under a steady stream, before its maximum", took)
	}
}

// TestExportedServices: the slices that wake the controller are those of
// services exported in the cluster or named by spec.services.
func TestExportedServices(t *testing.T) {
	e := newExported([]v1alpha1.ServiceSpec{{Namespace: "shop", Name: "api"}})
	e.set("shop/web", true)
	for key, want := range map[string]bool{"shop/api": true, "shop/web": true, "shop/db": false, "other/web": false} {
		if e.has(key) != want {
			t.Errorf("has(%s) = %v", key, !want)
		}
	}
	e.set("shop/web", false)
	if e.has("shop/web") {
		t.Error("an un-exported service still wakes the controller")
	}
}
