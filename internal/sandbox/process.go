package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procIdentity returns what tells a process apart from a later one that
// reuses its PID: its start time (clock ticks after boot, field 22 of
// /proc/<pid>/stat) and its command line (arguments joined by spaces).
func procIdentity(pid int) (start uint64, cmdline string, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", err
	}
	start, err = statStartTime(stat)
	if err != nil {
		return 0, "", fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0, "", err
	}
	return start, string(bytes.ReplaceAll(bytes.TrimRight(raw, "\x00"), []byte{0}, []byte{' '})), nil
}

// statStartTime reads field 22 (starttime) of a /proc/<pid>/stat line.
// Field 2, the command name in parentheses, may hold spaces and
// parentheses itself, so fields are counted from the last ')'.
func statStartTime(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name")
	}
	fields := strings.Fields(string(stat[i+1:])) // field 3 onwards
	const starttime = 22 - 3
	if len(fields) <= starttime {
		return 0, fmt.Errorf("%d fields after the command name, want more than %d", len(fields), starttime)
	}
	return strconv.ParseUint(fields[starttime], 10, 64)
}

// Record sets the state's process to pid, with the identity that `kosmos
// down` checks before it signals it.
func (st *State) Record(pid int) error {
	start, cmdline, err := procIdentity(pid)
	if err != nil {
		return fmt.Errorf("identify process %d: %w", pid, err)
	}
	st.PID, st.StartTime, st.Cmdline = pid, start, cmdline
	return nil
}

// isRecordedProcess reports whether the state's PID is alive and is the
// process recorded: same start time, same command line. A state without an
// identity (written before identities were recorded) matches nothing.
func (st State) isRecordedProcess() (bool, string) {
	if st.PID <= 0 || st.StartTime == 0 {
		return false, "no process identity recorded"
	}
	start, cmdline, err := procIdentity(st.PID)
	switch {
	case err != nil:
		return false, "no such process"
	case cmdline == "":
		return false, "it has exited"
	case start != st.StartTime:
		return false, fmt.Sprintf("started at tick %d, the sandbox at tick %d: the PID was reused", start, st.StartTime)
	case cmdline != st.Cmdline:
		return false, "runs another command line: the PID was reused"
	}
	return true, ""
}
