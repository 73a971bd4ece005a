package nodeagent

import (
	"os/exec"
	"strings"
	"testing"

	"kosmos.io/kosmos/internal/peering"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// transitTable is the agent's transit table as ip(8) prints it.
func transitTable(t *testing.T) string {
	t.Helper()
	out, _ := exec.Command("ip", "route", "show", "table", "4877").Output() // absent table: an error
	return string(out)
}

// TestLinuxTransitRouting: on a real kernel, a candidate's transit routing
// is a rule per path device and a table of its own; a change of the remote
// candidate moves the route, a node that is no candidate any more and a
// teardown remove both, and a foreign rule and route at the same priority
// and table stay.
func TestLinuxTransitRouting(t *testing.T) {
	freshKernel(t)
	for _, args := range [][]string{
		{"link", "add", "vx-local", "type", "bridge"}, {"link", "set", "vx-local", "up"},
		{"link", "add", "vx-bridge", "type", "bridge"}, {"addr", "add", "220.168.3.12/8", "dev", "vx-bridge"}, {"link", "set", "vx-bridge", "up"},
		{"rule", "add", "priority", "4877", "lookup", "100"},
		{"route", "add", "10.9.9.0/24", "dev", "eth0", "table", "4877", "proto", "static"},
	} {
		ip(t, args...)
	}
	spec := &v1alpha1.NodeConfigSpec{}
	tr := &TransitRouting{}
	settle := func(want peering.Transit) {
		t.Helper()
		tr.Want(want)
		if err := tr.Settle(spec, nil); err != nil {
			t.Fatal(err)
		}
	}
	route := func(via string) peering.Transit {
		return peering.Transit{Devices: []string{v1alpha1.DeviceLocal}, Routes: []v1alpha1.Route{{Dst: "10.20.1.0/24", Via: via, Device: v1alpha1.DeviceBridge}}}
	}
	settle(route("220.168.2.11"))
	settle(route("220.168.2.11")) // again: nothing changes, nothing fails
	if got := ip(t, "rule"); !strings.Contains(got, "4877:\tfrom all iif vx-local lookup 4877 proto 75") || !strings.Contains(got, "4877:\tfrom all lookup 100") {
		t.Errorf("rules:\n%s", got)
	}
	if got := transitTable(t); !strings.Contains(got, "10.20.1.0/24 via 220.168.2.11 dev vx-bridge proto 75") {
		t.Errorf("table:\n%s", got)
	}
	settle(route("220.168.2.12"))
	if got := transitTable(t); !strings.Contains(got, "10.20.1.0/24 via 220.168.2.12 dev vx-bridge") || strings.Contains(got, "220.168.2.11") {
		t.Errorf("table after the remote candidate moved:\n%s", got)
	}
	settle(peering.Transit{}) // no candidate any more
	if got := ip(t, "rule"); strings.Contains(got, "iif vx-local") || !strings.Contains(got, "lookup 100") {
		t.Errorf("rules of a node that is no candidate:\n%s", got)
	}
	if got := transitTable(t); strings.Contains(got, "10.20.1.0") || !strings.Contains(got, "10.9.9.0/24 dev eth0 proto static") {
		t.Errorf("table of a node that is no candidate:\n%s", got)
	}
	settle(route("220.168.2.11"))
	tr.Want(route("220.168.2.11"))
	if err := tr.Settle(nil, nil); err != nil { // the config is gone
		t.Fatal(err)
	}
	if got := ip(t, "rule"); strings.Contains(got, "iif vx-local") {
		t.Errorf("rules after teardown:\n%s", got)
	}
	if got := transitTable(t); strings.Contains(got, "10.20.1.0") || !strings.Contains(got, "10.9.9.0/24") {
		t.Errorf("table after teardown:\n%s", got)
	}
}
