package nodeagent

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestForeignRouteRefused: a destination another owner routes already is
// refused with a RouteTakenError naming that owner; the agent's other routes
// are applied, the foreign one is neither taken nor deleted (by the pass,
// by a repeat, by a teardown), and a destination the agent held before the
// other owner came stays the agent's.
func TestForeignRouteRefused(t *testing.T) {
	finding(t, "kernel: routes exclusive, foreign never taken")
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
	finding(t, "kernel: routes exclusive, foreign never taken")
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

// TestValidateRefusesClaims: routes and device addresses that would claim
// what is not Kosmos's are refused whole, each naming its field (the design
// notes of ranges.go).
func TestValidateRefusesClaims(t *testing.T) {
	finding(t, "kernel: default/host-overlapping claims refused")
	good := loadConfigs(t)["gateway"].Spec
	for name, c := range map[string]struct {
		mutate func(*v1alpha1.NodeConfigSpec)
		want   string
	}{
		"default route":        {func(s *v1alpha1.NodeConfigSpec) { s.Routes[0].Dst = "0.0.0.0/0" }, "routes[0].dst: 0.0.0.0/0 is a default route"},
		"default route v6":     {func(s *v1alpha1.NodeConfigSpec) { s.Routes[0].Dst = "::/0" }, "routes[0].dst: ::/0 is a default route"},
		"loopback":             {func(s *v1alpha1.NodeConfigSpec) { s.Routes[0].Dst = "127.0.0.0/8" }, "routes[0].dst: 127.0.0.0/8 overlaps the special range 127.0.0.0/8"},
		"link-local":           {func(s *v1alpha1.NodeConfigSpec) { s.Routes[0].Dst = "169.254.169.254/32" }, "overlaps the special range 169.254.0.0/16"},
		"multicast":            {func(s *v1alpha1.NodeConfigSpec) { s.Routes[0].Dst = "224.0.0.0/24" }, "overlaps the special range 224.0.0.0/4"},
		"own underlay":         {func(s *v1alpha1.NodeConfigSpec) { s.Routes[0].Dst = "192.168.3.0/24" }, "routes[0].dst: 192.168.3.0/24 contains the underlay address 192.168.3.11 (devices[0].underlayIP)"},
		"peer underlay":        {func(s *v1alpha1.NodeConfigSpec) { s.Routes[0].Dst = "192.168.1.0/24" }, "contains the underlay address 192.168.1.11 (fdb[0].dst)"},
		"duplicate dst":        {func(s *v1alpha1.NodeConfigSpec) { s.Routes[1].Dst = s.Routes[0].Dst }, "routes[1].dst: 10.10.1.0/24 is routed by routes[0] already"},
		"device default":       {func(s *v1alpha1.NodeConfigSpec) { s.Devices[0].Addresses = []string{"220.168.3.11/0"} }, "devices[0].addresses[0]: 0.0.0.0/0 is a default route"},
		"device over underlay": {func(s *v1alpha1.NodeConfigSpec) { s.Devices[0].Addresses = []string{"192.168.3.200/24"} }, "devices[0].addresses[0]: 192.168.3.0/24 contains the underlay address"},
		"device over route":    {func(s *v1alpha1.NodeConfigSpec) { s.Devices[0].Addresses = []string{"10.10.1.77/16"} }, "devices[0].addresses[0]: network 10.10.0.0/16 overlaps 10.10.1.0/24 (routes[0].dst)"},
		"device over own":      {func(s *v1alpha1.NodeConfigSpec) { s.Devices[0].Addresses = []string{"10.244.9.9/16"} }, "overlaps 10.244.0.0/16 (nat.mappings[0].realCIDR)"},
		"devices overlap":      {func(s *v1alpha1.NodeConfigSpec) { s.Devices[1].Addresses = []string{"220.168.3.12/8"} }, "devices[0].addresses[0]: network 220.0.0.0/8 overlaps 220.0.0.0/8 (devices[1].addresses[0])"},
		"route over own":       {func(s *v1alpha1.NodeConfigSpec) { s.Routes[0].Dst = "10.244.0.0/24" }, "routes[0].dst: 10.244.0.0/24 overlaps 10.244.0.0/16 (nat.mappings[0].realCIDR)"},
		"host bits in NAT":     {func(s *v1alpha1.NodeConfigSpec) { s.NAT.Mappings[0].RealCIDR = "10.244.0.1/16" }, `nat.mappings[0].realCIDR: "10.244.0.1/16" is not canonical (write 10.244.0.0/16)`},
		"quote in device name": {func(s *v1alpha1.NodeConfigSpec) { s.Devices[0].Name = `vx-a"b` }, `devices[0].name: "vx-a\"b" is not a device the agent may own`},
	} {
		t.Run(name, func(t *testing.T) {
			s := good.DeepCopy()
			c.mutate(s)
			err := Validate(s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// TestHostOverlapRefused: a route or device network overlapping an address
// of the host's own interfaces refuses the config whole, before any write;
// the same config on a host without that address is applied.
func TestHostOverlapRefused(t *testing.T) {
	finding(t, "kernel: default/host-overlapping claims refused")
	for name, c := range map[string]struct {
		host string
		want string
	}{
		"route into host network": {"172.16.1.9/24", "route to 172.16.1.0/24 overlaps the host's address 172.16.1.9/24"},
		"host address in a route": {"172.16.0.5/32", "route to 172.16.0.0/24 overlaps the host's address 172.16.0.5/32"},
		"device network":          {"220.1.2.3/32", "network of vx-bridge 220.0.0.0/8 overlaps the host's address 220.1.2.3/32"},
		"wide host network":       {"172.0.0.1/8", "route to 172.16.0.0/24 overlaps the host's address 172.0.0.1/8"},
	} {
		t.Run(name, func(t *testing.T) {
			k := &FakeKernel{}
			k.S.Others.Addrs = []netip.Prefix{netip.MustParsePrefix("192.168.0.1/24"), netip.MustParsePrefix(c.host)}
			_, err := Set(k, bigConfig(3))
			if err == nil || !strings.Contains(err.Error(), c.want) || k.Writes != 0 {
				t.Errorf("got %v after %d writes, want no write and %q", err, k.Writes, c.want)
			}
		})
	}
	k := &FakeKernel{}
	k.S.Others.Addrs = []netip.Prefix{netip.MustParsePrefix("192.168.0.1/24"), netip.MustParsePrefix("10.0.0.1/16")}
	if _, err := Set(k, bigConfig(3)); err != nil {
		t.Errorf("no overlap: %v", err)
	}
}

// TestSysctlDiff: the settings the devices rely on are compared like any
// other object: equal values write nothing, a drifted one is set, a
// recreated device's own setting is set again though it read equal, and a
// setting no longer desired is never reset.
func TestSysctlDiff(t *testing.T) {
	finding(t, "kernel: sysctls compared, errors reported")
	fwd := Sysctl{Key: "net.ipv4.ip_forward", Value: "1"}
	rpf := Sysctl{Key: "net.ipv4.conf.vx-bridge.rp_filter", Value: "2", Accept: "0", Dev: "vx-bridge"}
	off := func(x Sysctl, v string) Sysctl { x.Value = v; return x }
	for _, c := range []struct {
		name             string
		current, desired []Sysctl
		recreated        map[string]bool
		want             []string
	}{
		{"equal", []Sysctl{rpf, fwd}, []Sysctl{rpf, fwd}, nil, nil},
		{"drifted", []Sysctl{rpf, off(fwd, "0")}, []Sysctl{rpf, fwd}, nil, []string{"set sysctl net.ipv4.ip_forward=1"}},
		{"unreadable", []Sysctl{off(rpf, ""), fwd}, []Sysctl{rpf, fwd}, nil, []string{"set sysctl net.ipv4.conf.vx-bridge.rp_filter=2"}},
		{"new device", []Sysctl{fwd}, []Sysctl{rpf, fwd}, nil, []string{"set sysctl net.ipv4.conf.vx-bridge.rp_filter=2"}},
		{"recreated device", []Sysctl{rpf, fwd}, []Sysctl{rpf, fwd}, map[string]bool{"vx-bridge": true}, []string{"set sysctl net.ipv4.conf.vx-bridge.rp_filter=2"}},
		{"no longer desired", []Sysctl{rpf, fwd}, nil, nil, nil},
		{"rp_filter off serves", []Sysctl{off(rpf, "0"), fwd}, []Sysctl{rpf, fwd}, nil, nil},
		{"rp_filter strict", []Sysctl{off(rpf, "1"), fwd}, []Sysctl{rpf, fwd}, nil, []string{"set sysctl net.ipv4.conf.vx-bridge.rp_filter=2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, op := range diffSysctls(c.current, c.desired, c.recreated) {
				got = append(got, op.String())
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestSysctlErrorReported: a sysctl write that fails (a read-only
// /proc/sys) is reported by Set, naming the setting, and tried again on the
// next pass; the rest of the config is applied. Before the fix the error
// was logged at creation only and the setting never compared again.
func TestSysctlErrorReported(t *testing.T) {
	finding(t, "kernel: sysctls compared, errors reported")
	k := &FakeKernel{SysctlErr: errors.New("read-only file system")}
	spec := bigConfig(2)
	for pass := range 2 {
		res, err := Set(k, spec)
		if err == nil || !strings.Contains(err.Error(), "set sysctl net.ipv4.ip_forward=1: read-only file system") {
			t.Errorf("pass %d: err %v, want the sysctl write error", pass, err)
		}
		if pass == 0 && len(res.Applied) == 0 {
			t.Error("nothing else was applied")
		}
	}
	k.SysctlErr = nil
	// rp_filter reads 0 (no filtering), which serves as well as loose.
	if res, err := Set(k, spec); err != nil || len(res.Applied) != 1 {
		t.Errorf("writable again: writes %v, err %v; want ip_forward set", res.Applied, err)
	}
}

// TestRunHoldsConfigWithRefusedRoute: a config whose only difference from
// the last one is a route the kernel refuses (another owner's destination)
// is held, not taken for a config refused whole: Run logs no "NodeConfig
// refused" and does not restore the previous config.
func TestRunHoldsConfigWithRefusedRoute(t *testing.T) {
	finding(t, "kernel: routes exclusive, foreign never taken")
	a := bigConfig(2)
	b := bigConfig(2)
	b.Routes = append(b.Routes, v1alpha1.Route{Dst: "172.31.0.0/24", Via: b.Neighbors[0].IP, Device: "vx-bridge"})
	k := &FakeKernel{}
	k.S.Others.Routes = map[string]string{"172.31.0.0/24": "proto static dev eth0"}
	var log strings.Builder
	ctx, cancel := context.WithCancel(context.Background())
	passes := 0
	src := func() (*v1alpha1.NodeConfigSpec, error) {
		passes++
		switch passes {
		case 1:
			return a, nil
		case 3:
			cancel()
		}
		return b.DeepCopy(), nil // a new object every pass, as a file source reads it
	}
	changes := make(chan struct{}, 1)
	var reported []error
	Run(ctx, k, src, Options{Resync: time.Hour, Changes: changes, Log: slog.New(slog.NewTextHandler(&log, nil)),
		Report: func(_ *v1alpha1.NodeConfigSpec, _ Result, err error) {
			reported = append(reported, err)
			changes <- struct{}{}
		}})
	if strings.Contains(log.String(), "NodeConfig refused") {
		t.Errorf("a config with a refused route was taken for refused whole:\n%s", log.String())
	}
	var taken *RouteTakenError
	if len(reported) < 2 || !errors.As(reported[1], &taken) {
		t.Errorf("reported %v, want the refusal of 172.31.0.0/24", reported)
	}
}

// TestRouteTextCanonical: a destination written another way (IPv6 zeros
// spelt out) is still recognised as taken by another owner, and as the
// agent's own on the next pass (no write).
func TestRouteTextCanonical(t *testing.T) {
	finding(t, "kernel: routes exclusive, foreign never taken")
	spec := loadConfigs(t)["dualstack"].Spec.DeepCopy()
	i := slices.IndexFunc(spec.Routes, func(r v1alpha1.Route) bool { return r.Dst == "fd00:20:0:1::/64" })
	spec.Routes[i].Dst = "fd00:20:0:1:0:0:0:0/64"
	k := &FakeKernel{}
	if _, err := Set(k, spec); err != nil {
		t.Fatal(err)
	}
	if res, err := Set(k, spec); err != nil || len(res.Applied) != 0 {
		t.Errorf("repeat: writes %v, err %v", res.Applied, err)
	}
	k = &FakeKernel{}
	k.S.Others.Routes = map[string]string{"fd00:20:0:1::/64": "proto static dev eth0"}
	var taken *RouteTakenError
	if _, err := Set(k, spec); !errors.As(err, &taken) {
		t.Errorf("err %v, want the IPv6 destination refused", err)
	}
}
