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

// TestGroupOffloads: a group reads on only when every feature of it the
// device can change is active; features the device cannot change (not
// available, or never_changed) do not count, and a group with none is left
// out.
func TestGroupOffloads(t *testing.T) {
	names := []string{"tx-scatter-gather", "tx-checksum-ip-generic", "tx-tcp-segmentation", "tx-tcp6-segmentation", "rx-gro", "rx-checksum", "tx-generic-segmentation", "tx-checksum-ipv4"}
	mask := func(bits ...int) uint32 {
		var m uint32
		for _, b := range bits {
			m |= 1 << b
		}
		return m
	}
	all := mask(0, 1, 2, 3, 4, 5, 6)
	for _, c := range []struct {
		name  string
		block featureBlock
		want  string
	}{
		{"all on (ipv4 csum not available)", featureBlock{Available: all, Active: all}, "rx-checksumming on tx-checksumming on scatter-gather on tcp-segmentation-offload on generic-segmentation-offload on generic-receive-offload on"},
		{"only tx-tcp6-segmentation off", featureBlock{Available: all, Active: all &^ mask(3)}, "rx-checksumming on tx-checksumming on scatter-gather on tcp-segmentation-offload off generic-segmentation-offload on generic-receive-offload on"},
		{"GRO off, but never_changed", featureBlock{Available: all, Active: all &^ mask(4), NeverChanged: mask(4)}, "rx-checksumming on tx-checksumming on scatter-gather on tcp-segmentation-offload on generic-segmentation-offload on"},
		{"rx-checksum off and not available", featureBlock{Available: all &^ mask(5), Active: all &^ mask(5)}, "tx-checksumming on scatter-gather on tcp-segmentation-offload on generic-segmentation-offload on generic-receive-offload on"},
		{"no blocks", featureBlock{}, ""},
	} {
		var got []string
		for _, o := range groupOffloads("vx-bridge", names, []featureBlock{c.block}) {
			got = append(got, o.Feature+" "+onOff(o.On))
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s: got %q\nwant %q", c.name, strings.Join(got, " "), c.want)
		}
	}
	if got := groupOffloads("vx-bridge", names, nil); got != nil {
		t.Errorf("no blocks read: %v", got)
	}
}

// TestFakeOffloadRefused: an offload the device cannot change is a warning
// of the pass, not a failure: Set returns no error (so the WireGuard
// settle step runs), reports the refusal in Warnings, and applies the rest.
func TestFakeOffloadRefused(t *testing.T) {
	k := &FakeKernel{RefuseOffloads: map[string]bool{"vx-bridge/" + FeatureTxChecksum: true}}
	spec := bigConfig(1)
	if _, err := Set(k, spec); err != nil {
		t.Fatal(err)
	}
	k.S.Offloads = append(k.S.Offloads, Offload{Dev: "vx-bridge", Feature: FeatureTxChecksum}, Offload{Dev: "vx-bridge", Feature: FeatureGRO})
	for pass := range 2 {
		res, err := Set(k, spec)
		if err != nil || len(res.Failed) != 0 {
			t.Fatalf("pass %d: a refused offload failed the pass: %v", pass, err)
		}
		if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Error(), "set offload tx-checksumming on dev vx-bridge: refused") {
			t.Errorf("pass %d: warnings %v", pass, res.Warnings)
		}
		var applied []string
		for _, op := range res.Applied {
			applied = append(applied, op.String())
		}
		if want := map[int]string{0: "[set offload generic-receive-offload on dev vx-bridge (off → on)]", 1: "[]"}[pass]; fmt.Sprint(applied) != want {
			t.Errorf("pass %d: applied %v, want %s", pass, applied, want)
		}
	}
}
