package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"kosmos.io/kosmos/internal/check"
)

// State is what a running sandbox leaves in its directory (state.json)
// for `kosmos down` and `kosmos check`.
type State struct {
	PID        int    `json:"pid"`
	Topology   string `json:"topology"`
	Kubeconfig string `json:"kubeconfig"`
	DNS        string `json:"dns"`
	// Dataplane and Nodes say whether and how the packet world was built.
	Dataplane bool `json:"dataplane,omitempty"`
	Nodes     int  `json:"nodes"`
}

// ReadState reads a sandbox's state; the PID is 0 when no process of it
// is alive.
func ReadState(dir string) (State, error) {
	var st State
	raw, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("%s/state.json: %w", dir, err)
	}
	if st.PID <= 0 || syscall.Kill(st.PID, 0) != nil {
		st.PID = 0
	}
	return st, nil
}

// WriteState records st in dir.
func WriteState(dir string, st State) error {
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "state.json"), raw, 0o600)
}

// EnvDirClaimed tells the sandbox process that `kosmos up` already claimed
// its state directory (and writes its log there).
const EnvDirClaimed = "KOSMOS_SANDBOX_DIR_CLAIMED"

// ClaimDir makes dir ready for a new sandbox: it may be missing,
// empty, or an old sandbox's (it holds state.json); anything else is
// someone's directory and is never emptied.
func ClaimDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0):
		return nil
	case err != nil:
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err != nil {
		return fmt.Errorf("%s is not empty and holds no sandbox (no state.json): choose another --state-dir", dir)
	}
	return os.RemoveAll(dir) // a stopped sandbox's leftovers
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
