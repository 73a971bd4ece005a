package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestRunWireGuardHooks: Before runs ahead of Set and After behind it with
// Set's error, so that WireGuard removals wait for a Set that succeeded; a
// refused Set hands After its error (nothing is removed); After's error is
// reported with the pass; a failing Before skips the pass (no Set, no
// After). Before the fix there was no After: removals ran in Before.
func TestRunWireGuardHooks(t *testing.T) {
	good := bigConfig(1)
	bad := bigConfig(1)
	bad.Devices[0].Name = "eth0" // refused whole by Set
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	specs := []*v1alpha1.NodeConfigSpec{good, bad, good, nil}
	pass := 0
	src := func() (*v1alpha1.NodeConfigSpec, error) {
		s := specs[min(pass, len(specs)-1)]
		pass++
		if s == nil {
			cancel()
			return good, nil
		}
		return s.DeepCopy(), nil
	}
	var calls []string
	var reported []error
	changes := make(chan struct{}, 1)
	Run(ctx, &FakeKernel{}, src, Options{Resync: time.Hour, Changes: changes, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Before: func(*v1alpha1.NodeConfigSpec) error {
			calls = append(calls, fmt.Sprintf("before%d", pass))
			if pass == 3 {
				return errors.New("no blackholes")
			}
			return nil
		},
		After: func(_ *v1alpha1.NodeConfigSpec, setErr error) error {
			calls = append(calls, fmt.Sprintf("after%d(set failed %v)", pass, setErr != nil))
			return errors.New("device missing")
		},
		Report: func(_ *v1alpha1.NodeConfigSpec, _ Result, err error) {
			reported = append(reported, err)
			changes <- struct{}{}
		}})
	if got := strings.Join(calls, " "); !strings.HasPrefix(got, "before1 after1(set failed false) before2 after2(set failed true) before3 before4") {
		t.Errorf("calls %s", got)
	}
	if len(reported) < 3 || !strings.Contains(fmt.Sprint(reported[0]), "device missing") || !strings.Contains(fmt.Sprint(reported[2]), "no blackholes") {
		t.Errorf("reported %v", reported)
	}
}
