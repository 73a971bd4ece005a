package nodeagent

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/internal/testinfra/golden"
	"kosmos.io/kosmos/schema/v1alpha1"
)

func loadConfigs(t testing.TB) map[string]*v1alpha1.NodeConfig {
	t.Helper()
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) < 4 {
		t.Fatalf("only %d configs", len(files))
	}
	out := map[string]*v1alpha1.NodeConfig{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var nc v1alpha1.NodeConfig
		if err := yaml.UnmarshalStrict(data, &nc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".yaml")] = &nc
	}
	return out
}

// TestKernelStateGolden: each config applied to an empty kernel yields the
// state in its .state file; applying it again writes nothing.
func TestKernelStateGolden(t *testing.T) {
	for name, nc := range loadConfigs(t) {
		t.Run(name, func(t *testing.T) {
			k := &FakeKernel{}
			if _, err := Set(k, &nc.Spec); err != nil {
				t.Fatal(err)
			}
			st, _ := k.Read()
			got := st.String()
			golden.Assert(t, filepath.Join("testdata", name+".state"), []byte(got))
			writes := k.Writes
			res, err := Set(k, &nc.Spec)
			if err != nil || len(res.Applied) != 0 || k.Writes != writes {
				t.Errorf("second Set wrote %v (err %v)", res.Applied, err)
			}
		})
	}
}

// TestRandomWalk moves one kernel through a pseudorandom sequence of configs
// (and teardowns, and configs that are refused); after every step the kernel
// holds exactly the last good config, and repeating the step writes nothing.
func TestRandomWalk(t *testing.T) {
	configs := loadConfigs(t)
	var pool []*v1alpha1.NodeConfigSpec
	for _, nc := range configs {
		pool = append(pool, &nc.Spec)
		// A variant with half the routes and a changed MTU (a change in
		// place), one with another MAC (in place, its neighbours re-added)
		// and one with another VNI and MAC (a recreate).
		v := nc.Spec.DeepCopy()
		v.Routes = v.Routes[:len(v.Routes)/2]
		if len(v.Devices) > 0 {
			v.Devices[0].MTU = 1400
		}
		pool = append(pool, v)
		if len(nc.Spec.Devices) > 0 {
			v := nc.Spec.DeepCopy()
			v.Devices[0].MAC = "02:00:00:00:00:02"
			pool = append(pool, v)
			v = nc.Spec.DeepCopy()
			v.Devices[0].VNI += 100
			v.Devices[0].MAC = "02:00:00:00:00:01"
			pool = append(pool, v)
		}
	}
	pool = append(pool, &v1alpha1.NodeConfigSpec{})
	bad := configs["p2p-ipv4"].Spec.DeepCopy()
	bad.Devices[0].Name = "eth0" // outside the agent's prefix
	r := rand.New(rand.NewPCG(7, 11))
	k := &FakeKernel{}
	last := Desired(&v1alpha1.NodeConfigSpec{})
	for step := range 300 {
		switch n := r.IntN(len(pool) + 2); {
		case n == len(pool):
			if _, err := Teardown(k); err != nil {
				t.Fatalf("step %d teardown: %v", step, err)
			}
			last = State{}
		case n == len(pool)+1:
			writes := k.Writes
			if _, err := Set(k, bad); err == nil || k.Writes != writes {
				t.Fatalf("step %d: a refused config wrote to the kernel (err %v)", step, err)
			}
		default:
			before, _ := k.Read()
			res, err := Set(k, pool[n])
			if err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			last = Desired(pool[n])
			for i := range last.Links {
				_ = k.Resolve(&last.Links[i])
			}
			if err := checkLinkWrites(before, last, res.Applied); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			writes := k.Writes
			if _, err := Set(k, pool[n]); err != nil || k.Writes != writes {
				t.Fatalf("step %d: repeating the config wrote %d times (err %v)", step, k.Writes-writes, err)
			}
		}
		got, _ := k.Read()
		if got.String() != last.String() {
			t.Fatalf("step %d: kernel\n%s\nwant\n%s", step, got, last)
		}
	}
}

// checkLinkWrites checks, independently of linkMismatch, that a link was
// deleted only when it left or its VNI, port, local address or parent
// changed, and set in place only when it stayed with another MTU or MAC.
func checkLinkWrites(before, after State, applied []Op) error {
	was := index(before.Links, func(l Link) string { return l.Name })
	will := index(after.Links, func(l Link) string { return l.Name })
	for _, op := range applied {
		if op.Link == nil || op.Kind == OpAdd {
			continue
		}
		h, w := was[op.Link.Name], will[op.Link.Name]
		identity := h.VNI != w.VNI || h.Port != w.Port || h.Local != w.Local || h.Parent != w.Parent
		switch _, stays := will[op.Link.Name]; {
		case op.Kind == OpDel && stays && !identity:
			return fmt.Errorf("%s: recreated though only its MTU or MAC changed", op)
		case op.Kind == OpSet && (identity || h == w):
			return fmt.Errorf("%s: set in place though %+v → %+v", op, h, w)
		}
	}
	return nil
}

func TestValidateRefuses(t *testing.T) {
	good := loadConfigs(t)["gateway"].Spec
	for name, c := range map[string]struct {
		mutate func(*v1alpha1.NodeConfigSpec)
		want   string
	}{
		"foreign device": {func(s *v1alpha1.NodeConfigSpec) { s.Devices[0].Name = "eth0" }, `devices[0].name: "eth0" is not a device the agent may own`},
		"long name":      {func(s *v1alpha1.NodeConfigSpec) { s.Devices[0].Name = "vx-waytoolongname" }, "at most 15 characters"},
		"vni":            {func(s *v1alpha1.NodeConfigSpec) { s.Devices[0].VNI = 1 << 24 }, "devices[0].vni: 16777216 is out of range"},
		"multicast mac":  {func(s *v1alpha1.NodeConfigSpec) { s.Devices[0].MAC = "01:00:5e:00:00:01" }, "is not a unicast MAC"},
		"route device":   {func(s *v1alpha1.NodeConfigSpec) { s.Routes[0].Device = "vx-other" }, `routes[0].device: "vx-other" is not one of the config's devices`},
		"route dst":      {func(s *v1alpha1.NodeConfigSpec) { s.Routes[0].Dst = "10.0.0.1/8" }, "routes[0].dst"},
		"nat size":       {func(s *v1alpha1.NodeConfigSpec) { s.NAT.Mappings[0].GlobalCIDR = "100.65.0.0/24" }, "nat.mappings[0]"},
		"masquerade src": {func(s *v1alpha1.NodeConfigSpec) { s.NAT.Masquerade[0].ExceptSources = []string{"; rm -rf /"} }, "exceptSources[0]"},
		"shell in nic":   {func(s *v1alpha1.NodeConfigSpec) { s.Devices[0].NIC = "eth0; reboot" }, "nic"},
		"underlay":       {func(s *v1alpha1.NodeConfigSpec) { s.Devices[0].UnderlayIP = "node-1" }, "underlayIP"},
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
	if err := Validate(&good); err != nil {
		t.Errorf("good config refused: %v", err)
	}
}

// TestSharedContractSameKernelState: a NodeConfig of the shared contract
// (spec.peers, with the ClusterPeers of the other clusters as further
// documents of its file, as reconciler/netplan plans them for its golden
// cases) yields the kernel state in testdata/shared/*.state; the entries
// are those of the complete NodeConfig the earlier release planned for the
// same node (reconciler/netplan TestGoldenDerived).
func TestSharedContractSameKernelState(t *testing.T) {
	files, _ := filepath.Glob("testdata/shared/*.yaml")
	if len(files) < 3 {
		t.Fatalf("only %d shared configs", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			nc, peers, err := LoadConfigFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if nc.Spec.Peers == nil || len(peers) == 0 {
				t.Fatalf("%s is not of the shared contract", f)
			}
			c, err := Compose(nc, peers)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Peers) != len(peers) {
				t.Errorf("used %v of %d ClusterPeers", c.Peers, len(peers))
			}
			k := &FakeKernel{}
			if _, err := Set(k, c.Spec); err != nil {
				t.Fatal(err)
			}
			st, _ := k.Read()
			golden.Assert(t, filepath.Join("testdata", "shared", name+".state"), []byte(st.String()))
			if res, err := Set(k, c.Spec); err != nil || len(res.Applied) != 0 {
				t.Errorf("second Set wrote %v (err %v)", res.Applied, err)
			}
			// Invalid shared data is refused whole.
			peers[0].Spec.Endpoints = append(peers[0].Spec.Endpoints, v1alpha1.PeerEndpoint{Name: "bad", Tunnels: []v1alpha1.PeerTunnel{{Device: "vx-bridge", UnderlayIP: "x", Address: "y", MAC: "z"}}})
			var refused *RefusedError
			if _, err := Compose(nc, peers); !errors.As(err, &refused) || refused.Spec != &nc.Spec {
				t.Errorf("bad ClusterPeers not refused: %v", err)
			}
		})
	}
}
