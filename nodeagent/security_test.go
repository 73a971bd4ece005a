package nodeagent

import (
	"errors"
	"strings"
	"testing"
)

// TestForeignRouteRefused: a destination another owner routes already is
// refused with a RouteTakenError naming that owner; the agent's other routes
// are applied, the foreign one is neither taken nor deleted (by the pass,
// by a repeat, by a teardown), and a destination the agent held before the
// other owner came stays the agent's.
func TestForeignRouteRefused(t *testing.T) {
	spec := bigConfig(3)
	k := &FakeKernel{}
	k.S.Others.Routes = map[string]string{spec.Routes[1].Dst: "proto static dev eth0"}
	res, err := Set(k, spec)
	var taken *RouteTakenError
	if !errors.As(err, &taken) || taken.Route.Dst != spec.Routes[1].Dst || !strings.Contains(err.Error(), "another owner (proto static dev eth0)") {
		t.Fatalf("Set: %v, want a RouteTakenError for %s", err, spec.Routes[1].Dst)
	}
	if len(res.Failed) != 1 {
		t.Errorf("failed %v, want the one refusal", res.Failed)
	}
	st, _ := k.Read()
	if got := len(st.Routes); got != 2 {
		t.Errorf("the agent holds %d routes, want the 2 not taken:\n%s", got, st)
	}
	writes := k.Writes
	if _, err := Set(k, spec); err == nil || k.Writes != writes {
		t.Errorf("repeat: wrote %d times, err %v; want no write and the refusal again", k.Writes-writes, err)
	}
	if _, err := Teardown(k); err != nil {
		t.Fatal(err)
	}
	if k.S.Others.Routes[spec.Routes[1].Dst] == "" || len(k.S.Routes) != 0 {
		t.Errorf("after teardown: others %v, agent's %v", k.S.Others.Routes, k.S.Routes)
	}
}

// TestRouteNextHopChangeReplaces: a destination the agent holds whose next
// hop changes is replaced in place (one write), not added next to itself.
func TestRouteNextHopChangeReplaces(t *testing.T) {
	spec := bigConfig(2)
	k := &FakeKernel{}
	if _, err := Set(k, spec); err != nil {
		t.Fatal(err)
	}
	spec.Routes[0].Via = spec.Neighbors[1].IP
	res, err := Set(k, spec)
	if err != nil || len(res.Applied) != 1 || res.Applied[0].Kind != OpSet {
		t.Fatalf("writes %v, err %v; want one set route", res.Applied, err)
	}
	if want := "set route 172.16.0.0/24 via 220.99.0.3 dev vx-bridge"; res.Applied[0].String() != want {
		t.Errorf("got %q, want %q", res.Applied[0], want)
	}
}
