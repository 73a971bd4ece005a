package nodeagent

import (
	"fmt"
	"testing"

	"kosmos.io/kosmos/internal/peering"
)

func TestTransitRulesAndDiff(t *testing.T) {
	for _, c := range []struct {
		devices []string
		want    string
	}{
		{nil, "[]"},
		{[]string{"vx-local"}, "[{4 vx-local} {6 vx-local}]"},
		{[]string{"vx-local-6", "vx-local", "vx-local"}, "[{4 vx-local} {6 vx-local} {4 vx-local-6} {6 vx-local-6}]"},
	} {
		if got := fmt.Sprint(transitRules(peering.Transit{Devices: c.devices})); got != c.want {
			t.Errorf("transitRules(%v) = %s, want %s", c.devices, got, c.want)
		}
	}
	for _, c := range []struct {
		want, held []string
		out        string
	}{
		{nil, nil, "[] []"},
		{[]string{"a", "b"}, nil, "[a b] []"},
		{nil, []string{"a"}, "[] [a]"},
		{[]string{"a", "b"}, []string{"b", "c"}, "[a] [c]"},
		{[]string{"a"}, []string{"a"}, "[] []"},
	} {
		add, del := keyDiff(c.want, c.held)
		if got := fmt.Sprint(add, " ", del); got != c.out {
			t.Errorf("keyDiff(%v, %v) = %s, want %s", c.want, c.held, got, c.out)
		}
	}
}

// TestTransitSettleTarget: after a pass whose Set failed (the main table
// stays with the config before), the transit table stays with it too; the
// next good pass writes the wanted one.
func TestTransitSettleTarget(t *testing.T) {
	a := peering.Transit{Devices: []string{"vx-local"}}
	b := peering.Transit{Devices: []string{"vx-local", "vx-local-6"}}
	var tr TransitRouting
	tr.Want(a)
	steps := []struct {
		want   *peering.Transit
		passOK bool
		got    peering.Transit
	}{{nil, true, a}, {&b, false, a}, {nil, false, a}, {nil, true, b}, {&peering.Transit{}, false, b}, {nil, true, peering.Transit{}}}
	for i, s := range steps {
		if s.want != nil {
			tr.Want(*s.want)
		}
		if got := tr.settleTarget(s.passOK); fmt.Sprint(got) != fmt.Sprint(s.got) {
			t.Errorf("step %d: settle %v, want %v", i, got, s.got)
		}
	}
}
