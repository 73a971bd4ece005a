package nodeagent

import (
	"os/exec"
	"testing"
)

// TestLinuxNICSelectors: on a real kernel, the tunnel device of a config
// whose nic is cidr:<CIDR> or can-reach:<IP> is bound to the interface the
// selector names (eth1, not eth0 that holds the underlay address), with
// that interface's MTU less the VXLAN overhead; auto binds to eth0.
func TestLinuxNICSelectors(t *testing.T) {
	leave := inFreshNS(t)
	defer leave()
	for _, args := range [][]string{
		{"link", "add", "eth1", "mtu", "9000", "type", "veth", "peer", "name", "eth1p", "mtu", "9000"},
		{"link", "set", "eth1p", "up"},
		{"addr", "add", "10.77.0.5/24", "dev", "eth1"},
		{"link", "set", "eth1", "up"},
		{"route", "add", "172.31.0.0/16", "dev", "eth1"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	lk, err := NewLinuxKernel()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		nic, parent string
		mtu         int
	}{
		{"auto", "eth0", 1450},
		{"cidr:10.77.0.0/16", "eth1", 8950},
		{"can-reach:172.31.4.4", "eth1", 8950},
		{"can-reach:192.168.0.77", "eth0", 1450},
	} {
		spec := bigConfig(2)
		spec.Devices[0].NIC = c.nic
		if _, err := Set(lk, spec); err != nil {
			t.Fatalf("nic %s: %v", c.nic, err)
		}
		got, err := lk.Read()
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Links) != 1 || got.Links[0].Parent != c.parent || got.Links[0].MTU != c.mtu {
			t.Errorf("nic %s: links %+v, want parent %s, mtu %d", c.nic, got.Links, c.parent, c.mtu)
		}
	}
	spec := bigConfig(2)
	spec.Devices[0].NIC = "cidr:10.88.0.0/16"
	if _, err := Set(lk, spec); err == nil || err.Error() == "" {
		t.Errorf("nic cidr:10.88.0.0/16 (no interface there): error %v", err)
	} else {
		t.Logf("nic cidr:10.88.0.0/16: %v", err)
	}
}
