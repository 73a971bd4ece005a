package nodeagent

import (
	"slices"
	"testing"
)

// TestTeardownDevices: teardown removes the default device, the device a
// config named, and each one's rotation device; never a link the agent may
// not own.
func TestTeardownDevices(t *testing.T) {
	for _, c := range []struct {
		names []string
		want  []string
	}{
		{nil, []string{"vx-wg", "vx-wg1"}},
		{[]string{"vx-wg"}, []string{"vx-wg", "vx-wg1"}},
		{[]string{"vx-crypt"}, []string{"vx-wg", "vx-wg1", "vx-crypt", "vx-crypt1"}},
		{[]string{"", "eth0", "vx-wg1"}, []string{"vx-wg", "vx-wg1", "vx-wg11"}},
	} {
		if got := teardownDevices(c.names...); !slices.Equal(got, c.want) {
			t.Errorf("teardownDevices(%q) = %q, want %q", c.names, got, c.want)
		}
	}
}

// TestAdoptRotationLink: only a kernel WireGuard link of the rotation
// device's name is taken over at start.
func TestAdoptRotationLink(t *testing.T) {
	for typ, want := range map[string]bool{"wireguard": true, "tuntap": false, "vxlan": false, "dummy": false, "": false} {
		if got := adoptRotationLink(typ); got != want {
			t.Errorf("adoptRotationLink(%q) = %v, want %v", typ, got, want)
		}
	}
}
