package nodeagent

import (
	"errors"
	"net/netip"
	"testing"
)

func TestChooseNIC(t *testing.T) {
	a := netip.MustParseAddr
	ifaces := []nicInfo{
		{Name: "lo", Addrs: []netip.Addr{a("127.0.0.1"), a("::1")}},
		{Name: "eth1", Addrs: []netip.Addr{a("10.1.0.5"), a("fd00:1::5")}},
		{Name: "eth0", Addrs: []netip.Addr{a("192.168.1.10")}},
		{Name: "bond0", Addrs: []netip.Addr{a("10.1.7.9")}},
	}
	routes := map[netip.Addr]string{a("10.1.200.1"): "eth1", a("8.8.8.8"): "eth0"}
	routeTo := func(ip netip.Addr) (string, error) {
		if n, ok := routes[ip]; ok {
			return n, nil
		}
		return "", errors.New("network is unreachable")
	}
	for _, c := range []struct {
		nic, local, want string
	}{
		{"auto", "192.168.1.10", "eth0"},
		{"", "10.1.0.5", "eth1"},
		{"auto", "192.168.9.9", "error: no interface holds the underlay address 192.168.9.9"},
		{"eth1", "192.168.1.10", "eth1"},
		{"eth9", "192.168.1.10", "error: interface eth9: not found"},
		{"cidr:10.1.0.0/16", "192.168.1.10", "bond0"}, // first by name
		{"cidr:10.1.0.0/16", "10.1.0.5", "eth1"},      // the one holding the underlay address
		{"cidr:fd00:1::/64", "192.168.1.10", "eth1"},
		{"cidr:172.16.0.0/12", "192.168.1.10", "error: nic cidr:172.16.0.0/12: no interface has an address in 172.16.0.0/12"},
		{"can-reach:10.1.200.1", "192.168.1.10", "eth1"},
		{"can-reach:8.8.8.8", "10.1.0.5", "eth0"},
		{"can-reach:1.1.1.1", "10.1.0.5", "error: nic can-reach:1.1.1.1: route to 1.1.1.1: network is unreachable"},
		{"cidr:x", "10.1.0.5", `error: "cidr:x": the part after cidr: is not a CIDR`},
	} {
		got, err := chooseNIC(c.nic, a(c.local), ifaces, routeTo)
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != c.want {
			t.Errorf("chooseNIC(%q, %s) = %s, want %s", c.nic, c.local, got, c.want)
		}
	}
}
