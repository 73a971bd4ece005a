package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"kosmos.io/kosmos/internal/check"
)

// State is what a running sandbox leaves in its directory (state.json)
// for `kosmos down` and `kosmos check`.
type State struct {
	// PID, StartTime and Cmdline identify the sandbox process; see Record.
	// StartTime is in clock ticks after boot (/proc/<pid>/stat field 22).
	PID        int    `json:"pid"`
	StartTime  uint64 `json:"startTime,omitempty"`
	Cmdline    string `json:"cmdline,omitempty"`
	Topology   string `json:"topology"`
	Kubeconfig string `json:"kubeconfig"`
	DNS        string `json:"dns"`
	// Dataplane and Nodes say whether and how the packet world was built.
	Dataplane bool `json:"dataplane,omitempty"`
	Nodes     int  `json:"nodes"`
}

// ReadState reads a sandbox's state; the PID is 0 unless the recorded
// process is alive and still the one recorded (start time and command
// line: a PID reused by another process is not the sandbox).
func ReadState(dir string) (State, error) {
	st, err := readState(dir)
	if err != nil {
		return st, err
	}
	if ok, _ := st.isRecordedProcess(); !ok {
		st.PID = 0
	}
	return st, nil
}

// readState reads state.json as it is.
func readState(dir string) (State, error) {
	var st State
	raw, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("%s/state.json is not a sandbox state: %w", dir, err)
	}
	return st, nil
}

// WriteState records st in dir, which holds the sandbox marker.
func WriteState(dir string, st State) error {
	if err := checkMarker(dir); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "state.json"), raw, 0o600)
}

// markerFile, written by `kosmos up` into the directory it claims, says
// the directory is a sandbox's: `kosmos down` removes nothing without it.
const (
	markerFile    = ".kosmos-sandbox"
	markerContent = "This directory is a Kosmos sandbox's state; `kosmos down` removes it.\n"
)

// checkMarker returns an error unless dir holds the sandbox marker.
func checkMarker(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, markerFile))
	if err != nil || string(b) != markerContent {
		return fmt.Errorf("%s holds no sandbox marker (%s): not a directory `kosmos up` made, so nothing in it is touched", dir, markerFile)
	}
	return nil
}

// EnvDirClaimed tells the sandbox process that `kosmos up` already claimed
// its state directory (and writes its log there).
const EnvDirClaimed = "KOSMOS_SANDBOX_DIR_CLAIMED"

// ClaimDir makes dir ready for a new sandbox and marks it: it may be
// missing, empty, or a stopped sandbox's (it holds the marker and a
// readable state whose process is gone); anything else is someone's
// directory and is never emptied.
func ClaimDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0):
	case err != nil:
		return err
	default:
		if err := checkMarker(dir); err != nil {
			return fmt.Errorf("%s is not empty and holds no sandbox: choose another --state-dir", dir)
		}
		st, err := readState(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: refused; remove %s yourself if no sandbox runs there", err, dir)
		}
		if ok, _ := st.isRecordedProcess(); ok {
			return fmt.Errorf("a sandbox is running in %s (pid %d): kosmos down first", dir, st.PID)
		}
		if err := os.RemoveAll(dir); err != nil { // a stopped sandbox's leftovers
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, markerFile), []byte(markerContent), 0o600)
}

// WaitReady waits (timeout at most) for the checks to pass, then reports.
func (s *Sandbox) WaitReady(ctx context.Context, timeout time.Duration) check.Report {
	deadline := time.Now().Add(timeout)
	for {
		r, err := check.Collect(ctx, s.Topology, s.KubeconfigPath)
		if err == nil && check.WriteChecks(io.Discard, r.Checks(s.Topology, s.o.Dataplane)) || time.Now().After(deadline) || ctx.Err() != nil {
			return r
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
