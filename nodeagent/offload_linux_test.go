package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"

	"kosmos.io/kosmos/internal/testinfra/poll"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestLinuxOffloadDrift: on a real kernel (a fresh network namespace), a
// new vx-bridge holds every tunnel offload on; each one turned off from
// outside through the ethtool ioctl (what `ethtool -K` does) is set again
// by the next pass, which says so, and the pass after writes nothing. The
// parent device eth0, not the agent's, keeps the offloads its owner set.
func TestLinuxOffloadDrift(t *testing.T) {
	lk := freshKernel(t)
	// The owner of eth0 turned TSO off there: the agent must leave it.
	if err := SetOffload("eth0", FeatureTSO, false); err != nil {
		t.Fatal(err)
	}
	spec := bigConfig(1)
	if _, err := Set(lk, spec); err != nil {
		t.Fatal(err)
	}
	for _, f := range tunnelFeatures {
		if on, err := ReadOffload("vx-bridge", f); err != nil || !on {
			t.Errorf("new vx-bridge: %s on=%v err=%v", f, on, err)
		}
	}
	for _, f := range tunnelFeatures {
		if err := SetOffload("vx-bridge", f, false); err != nil {
			t.Fatalf("turn %s off from outside: %v", f, err)
		}
		res, err := Set(lk, spec)
		var got []string
		for _, op := range res.Applied {
			got = append(got, op.String())
		}
		if want := "set offload " + f + " on dev vx-bridge (off → on)"; err != nil || !slices.Contains(got, want) {
			t.Errorf("%s off: writes %q, err %v; want %q", f, got, err, want)
		}
		for _, g := range tunnelFeatures {
			if on, err := ReadOffload("vx-bridge", g); err != nil || !on {
				t.Errorf("after %s off and a pass: %s on=%v err=%v", f, g, on, err)
			}
		}
		if res, err := Set(lk, spec); err != nil || len(res.Applied) != 0 {
			t.Errorf("after %s: repeat wrote %v (err %v)", f, res.Applied, err)
		}
	}
	if on, err := ReadOffload("eth0", FeatureTSO); err != nil || on {
		t.Errorf("eth0 (not the agent's): TSO on=%v err=%v; its owner turned it off", on, err)
	}
	if err := lk.Apply(Op{Kind: OpSet, Offload: &Offload{Dev: "vx-nosuch", Feature: FeatureGRO, On: true}}); err == nil ||
		!strings.HasPrefix(err.Error(), "set offload generic-receive-offload on dev vx-nosuch: ") {
		t.Errorf("a missing device: %v", err)
	}
	// --leave-offloads: a node that needs tx-checksumming off keeps it off.
	lk.LeaveOffloads = true
	if err := SetOffload("vx-bridge", FeatureTxChecksum, false); err != nil {
		t.Fatal(err)
	}
	if res, err := Set(lk, spec); err != nil || len(res.Applied) != 0 {
		t.Errorf("leaving offloads: writes %v (err %v)", res.Applied, err)
	}
	if on, err := ReadOffload("vx-bridge", FeatureTxChecksum); err != nil || on {
		t.Errorf("leaving offloads: tx-checksumming on=%v err=%v, want it left off", on, err)
	}
}

// TestLinuxOffloadRepairedByRun: the running agent (Run, woken by netlink
// events, resync an hour away) sets GRO again within moments of its being
// turned off from outside, reports the change, and counts it in
// kosmos_agent_offload_repairs_total.
func TestLinuxOffloadRepairedByRun(t *testing.T) {
	lk := freshKernel(t)
	ctx, cancel := context.WithCancel(context.Background())
	changes, err := Subscribe(ctx) // in this namespace: the socket stays in it
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	spec := bigConfig(1)
	var mu sync.Mutex
	var reported []string
	passes := 0
	wait := runHere(t, ctx, lk, func() (*v1alpha1.NodeConfigSpec, error) { return spec, nil }, Options{
		Resync: time.Hour, Changes: changes, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Report: func(_ *v1alpha1.NodeConfigSpec, res Result, _ error) {
			mu.Lock()
			defer mu.Unlock()
			passes++
			for _, op := range res.Applied {
				reported = append(reported, op.String())
			}
		}})
	defer func() { cancel(); wait() }()
	poll.Until(t, 10*time.Second, "the first pass", func() bool { mu.Lock(); defer mu.Unlock(); return passes > 0 })
	before := testutil.ToFloat64(metricOffloadRepairs.WithLabelValues(FeatureGRO))
	if err := SetOffload("vx-bridge", FeatureGRO, false); err != nil {
		t.Fatal(err)
	}
	took := poll.Until(t, 10*time.Second, "GRO set again on vx-bridge", func() bool {
		on, err := ReadOffload("vx-bridge", FeatureGRO)
		return err == nil && on
	})
	t.Logf("GRO back on vx-bridge %v after it was turned off", took)
	// The pass reports after its last write: the kernel may show GRO on
	// a moment before the report and the counter do.
	want := "set offload generic-receive-offload on dev vx-bridge (off → on)"
	poll.NoError(t, 10*time.Second, "the repair reported and counted", func() error {
		mu.Lock()
		got := slices.Clone(reported)
		mu.Unlock()
		if !slices.Contains(got, want) {
			return fmt.Errorf("reported %q, want %q", got, want)
		}
		if after := testutil.ToFloat64(metricOffloadRepairs.WithLabelValues(FeatureGRO)); after != before+1 {
			return fmt.Errorf("kosmos_agent_offload_repairs_total{feature=generic-receive-offload} %v → %v, want one more", before, after)
		}
		return nil
	})
}

// setKernelFeature turns one kernel feature bit (as ETH_SS_FEATURES names
// it) on or off on dev with ETHTOOL_SFEATURES, what `ethtool -K dev
// tx-tcp6-segmentation off` does: a drift of one feature of a group.
func setKernelFeature(t *testing.T, dev, name string, on bool) {
	t.Helper()
	fd, err := ethtoolSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	names, err := featureNames(fd, dev)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.Index(names, name)
	if i < 0 {
		t.Fatalf("the kernel has no feature %q", name)
	}
	size := (len(names) + 31) / 32
	buf := make([]uint32, 2+2*size)
	buf[0], buf[1] = unix.ETHTOOL_SFEATURES, uint32(size)
	buf[2+2*(i/32)] = 1 << (i % 32) // valid
	if on {
		buf[3+2*(i/32)] = 1 << (i % 32) // requested
	}
	err = ethtoolIoctl(fd, dev, unsafe.Pointer(&buf[0]))
	runtime.KeepAlive(buf)
	if err != nil {
		t.Fatalf("set %s %v dev %s: %v", name, on, dev, err)
	}
}

// TestLinuxOffloadPartialDrift: one feature of a group turned off alone
// (tx-tcp6-segmentation, which the one-group read of `ethtool -k`'s summary
// would still call on) reads as the group off and is set again; the pass
// after writes nothing, and a write the kernel finds already done is
// neither applied nor counted.
func TestLinuxOffloadPartialDrift(t *testing.T) {
	lk := freshKernel(t)
	spec := bigConfig(1)
	if _, err := Set(lk, spec); err != nil {
		t.Fatal(err)
	}
	setKernelFeature(t, "vx-bridge", "tx-tcp6-segmentation", false)
	res, err := Set(lk, spec)
	var got []string
	for _, op := range res.Applied {
		got = append(got, op.String())
	}
	if want := "set offload tcp-segmentation-offload on dev vx-bridge (off → on)"; err != nil || !slices.Equal(got, []string{want}) {
		t.Errorf("tx-tcp6-segmentation off: writes %q, err %v; want %q", got, err, want)
	}
	fd, err := ethtoolSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	names, err := featureNames(fd, "vx-bridge")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := readFeatures(fd, "vx-bridge", len(names))
	if i := slices.Index(names, "tx-tcp6-segmentation"); err != nil || i < 0 || blocks[i/32].Active&(1<<(i%32)) == 0 {
		t.Errorf("tx-tcp6-segmentation not active again (bit %d, err %v)", i, err)
	}
	if res, err := Set(lk, spec); err != nil || len(res.Applied) != 0 {
		t.Errorf("repeat wrote %v (err %v)", res.Applied, err)
	}
	// A write whose work another hand did meanwhile: not a change.
	if err := lk.Apply(Op{Kind: OpSet, Offload: &Offload{Dev: "vx-bridge", Feature: FeatureGRO, On: true}}); !errors.Is(err, errNoChange) {
		t.Errorf("a write of what the kernel holds: %v, want errNoChange", err)
	}
}
