package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Down stops the sandbox of dir and removes the directory, as `kosmos down`:
//
//   - a missing directory, or one with neither marker nor state, holds no
//     sandbox: nothing to do;
//   - a directory without the marker `kosmos up` writes is refused whole;
//   - an unreadable state.json is refused, and nothing is removed;
//   - the recorded process is signalled only while it is alive and still
//     the one recorded (start time and command line), so a PID reused after
//     a crash is never signalled; then the directory is removed.
func Down(dir string, out io.Writer) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(out, "no sandbox in %s\n", dir)
		return nil
	}
	if err := checkMarker(dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "state.json")); errors.Is(serr, os.ErrNotExist) {
			fmt.Fprintf(out, "no sandbox in %s\n", dir)
			return nil
		}
		return err
	}
	st, err := readState(dir)
	switch {
	case errors.Is(err, os.ErrNotExist): // claimed, never started
	case err != nil:
		return fmt.Errorf("%w: refused, nothing signalled or removed; remove %s yourself if no sandbox runs there", err, dir)
	default:
		if err := stopProcess(st, out); err != nil {
			return err
		}
	}
	if st.Dataplane {
		DestroyDataplane() // gone with the process, unless it died hard
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	fmt.Fprintf(out, "sandbox stopped; %s removed\n", dir)
	return nil
}

// stopProcess sends SIGTERM to the sandbox process, waits up to 90s, then
// kills its session (the control planes with it). Every signal is sent
// only after the process is checked to be the recorded one.
func stopProcess(st State, out io.Writer) error {
	if ok, why := st.isRecordedProcess(); !ok {
		if st.PID > 0 {
			fmt.Fprintf(out, "pid %d is not the sandbox (%s): not signalled\n", st.PID, why)
		}
		return nil
	}
	// A pidfd-backed handle: once the identity is checked below, a signal
	// through it cannot reach a later process that reuses the PID.
	p, err := os.FindProcess(st.PID)
	if err != nil {
		return nil // gone
	}
	defer p.Release()
	if ok, _ := st.isRecordedProcess(); !ok {
		return nil
	}
	fmt.Fprintf(out, "stopping the sandbox (pid %d)\n", st.PID)
	_ = p.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if ok, _ := st.isRecordedProcess(); !ok {
			st.awaitReaped(10 * time.Second)
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	if ok, _ := st.isRecordedProcess(); ok {
		_ = syscall.Kill(-st.PID, syscall.SIGKILL) // its session: control planes included
	}
	return nil
}

// awaitReaped waits, up to d, while the recorded process lingers as a
// zombie (exited, its PID not yet released by its parent), so that once
// Down returns the sandbox's PID is gone, as its callers expect.
func (st State) awaitReaped(d time.Duration) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if start, _, err := procIdentity(st.PID); err != nil || start != st.StartTime {
			return
		}
	}
}
