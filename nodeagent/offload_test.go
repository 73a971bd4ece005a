package nodeagent

import (
	"fmt"
	"strings"
	"testing"
)

// TestOffloadsFor: the desired offloads are a function of the devices
// alone: every tunnel feature on, on each device, in dependency order.
func TestOffloadsFor(t *testing.T) {
	all := "rx-checksumming on tx-checksumming on scatter-gather on tcp-segmentation-offload on generic-segmentation-offload on generic-receive-offload on"
	for _, c := range []struct {
		name  string
		links []Link
		want  string
	}{
		{"none", nil, ""},
		{"one device", []Link{{Name: "vx-bridge"}}, "offloads vx-bridge " + all + "\n"},
		{"two devices, sorted", []Link{{Name: "vx-local"}, {Name: "vx-bridge"}},
			"offloads vx-bridge " + all + "\noffloads vx-local " + all + "\n"},
		{"IPv6 twin too", []Link{{Name: "vx-bridge-6", Local: "fd00::1"}}, "offloads vx-bridge-6 " + all + "\n"},
	} {
		var b strings.Builder
		writeOffloads(&b, offloadsFor(c.links))
		if b.String() != c.want {
			t.Errorf("%s: got\n%s\nwant\n%s", c.name, b.String(), c.want)
		}
	}
}

// TestOffloadDiff: a setting turned off from outside is set again (checksums
// before segmentation); one that holds, one of a new device and one of a
// device being recreated are not written.
func TestOffloadDiff(t *testing.T) {
	desired := offloadsFor([]Link{{Name: "vx-bridge"}, {Name: "vx-local"}})
	off := func(dev string, features ...string) []Offload {
		out := offloadsFor([]Link{{Name: "vx-bridge"}, {Name: "vx-local"}})
		for i := range out {
			for _, f := range features {
				if out[i].Dev == dev && out[i].Feature == f {
					out[i].On = false
				}
			}
		}
		return out
	}
	for _, c := range []struct {
		name      string
		current   []Offload
		recreated map[string]bool
		want      []string
	}{
		{"all on", desired, nil, nil},
		{"GRO off", off("vx-bridge", FeatureGRO), nil, []string{"set offload generic-receive-offload on dev vx-bridge (off → on)"}},
		{"TSO and tx off, tx first", off("vx-local", FeatureTSO, FeatureTxChecksum), nil, []string{
			"set offload tx-checksumming on dev vx-local (off → on)", "set offload tcp-segmentation-offload on dev vx-local (off → on)"}},
		{"new device", off("vx-bridge")[:6], nil, nil},
		{"recreated device", off("vx-bridge", FeatureGRO), map[string]bool{"vx-bridge": true}, nil},
	} {
		var got []string
		for _, op := range diffOffloads(c.current, desired, c.recreated) {
			got = append(got, op.String())
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// TestFakeOffloadRepair: through Set on the fake, an offload turned off is
// set again, and a second Set writes nothing.
func TestFakeOffloadRepair(t *testing.T) {
	k := &FakeKernel{}
	spec := bigConfig(1)
	if _, err := Set(k, spec); err != nil {
		t.Fatal(err)
	}
	k.S.Offloads = append(k.S.Offloads, Offload{Dev: "vx-bridge", Feature: FeatureGSO})
	res, err := Set(k, spec)
	if err != nil || len(res.Applied) != 1 || res.Applied[0].String() != "set offload generic-segmentation-offload on dev vx-bridge (off → on)" {
		t.Errorf("repair: %v, %v", res.Applied, err)
	}
	if res, err := Set(k, spec); err != nil || len(res.Applied) != 0 {
		t.Errorf("repeat: %v, %v", res.Applied, err)
	}
}
