package sandbox

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// startSleeper starts `sleep 60` in its own session (as the sandbox runs);
// the test ends it.
func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	p := exec.Command("sleep", "60")
	p.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	// Reaped as soon as it exits, as a sandbox's parent (a shell, init)
	// does: Down waits for the PID to be gone.
	reaped := make(chan struct{})
	go func() { _ = p.Wait(); close(reaped) }()
	t.Cleanup(func() { _ = p.Process.Kill(); <-reaped })
	return p
}

// claimed returns a directory claimed by ClaimDir (marker written), with
// state.json holding raw unless raw is nil.
func claimed(t *testing.T, raw []byte) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sandbox")
	if err := ClaimDir(dir); err != nil {
		t.Fatal(err)
	}
	if raw != nil {
		if err := os.WriteFile(filepath.Join(dir, "state.json"), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func stateJSON(t *testing.T, st State) []byte {
	t.Helper()
	raw, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// running reports whether p still runs (a zombie does not).
func running(p *exec.Cmd) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.Process.Pid), "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] != 'Z'
}

// TestDownRefusesUnparsableState: a state.json that is not a state is
// refused with a clear error, and the directory is left as it is.
func TestDownRefusesUnparsableState(t *testing.T) {
	dir := claimed(t, []byte("{\"pid\": 1, garbage"))
	var out bytes.Buffer
	err := Down(dir, &out)
	if err == nil || !strings.Contains(err.Error(), "state.json is not a sandbox state") || !strings.Contains(err.Error(), "nothing signalled or removed") {
		t.Fatalf("want a refusal, got %v (%s)", err, out.String())
	}
	if b, err := os.ReadFile(filepath.Join(dir, "state.json")); err != nil || !strings.Contains(string(b), "garbage") {
		t.Errorf("state.json was touched: %v", err)
	}
	if err := ClaimDir(dir); err == nil {
		t.Error("kosmos up claimed a directory with an unparsable state")
	}
}

// TestDownNeedsTheMarker: a directory with a state.json but without the
// marker `kosmos up` writes is not a sandbox's; nothing is signalled or
// removed.
func TestDownNeedsTheMarker(t *testing.T) {
	p := startSleeper(t)
	dir := t.TempDir()
	var st State
	if err := st.Record(p.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), stateJSON(t, st), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Down(dir, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "holds no sandbox marker") {
		t.Errorf("want a refusal for the missing marker, got %v", err)
	}
	if !running(p) {
		t.Error("a process was signalled from an unmarked directory")
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err != nil {
		t.Errorf("the unmarked directory was emptied: %v", err)
	}
}

// TestDownSparesAReusedPID: the state names the PID of an unrelated live
// process (what a crash and PID reuse leave). Whether its start time or its
// command line differs, or no identity was recorded, Down does not signal
// it; it removes the stale directory.
func TestDownSparesAReusedPID(t *testing.T) {
	p := startSleeper(t)
	var real State
	if err := real.Record(p.Process.Pid); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]State{
		"other start time": {PID: real.PID, StartTime: real.StartTime + 1, Cmdline: real.Cmdline},
		"other command":    {PID: real.PID, StartTime: real.StartTime, Cmdline: "kosmos up --foreground -f t.yaml"},
		"no identity":      {PID: real.PID},
	} {
		t.Run(name, func(t *testing.T) {
			dir := claimed(t, stateJSON(t, st))
			var out bytes.Buffer
			if err := Down(dir, &out); err != nil {
				t.Fatal(err)
			}
			if !running(p) {
				t.Fatalf("Down signalled an unrelated process:\n%s", out.String())
			}
			if !strings.Contains(out.String(), "not signalled") {
				t.Errorf("Down does not say it left pid %d alone:\n%s", st.PID, out.String())
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("the stale directory is still there: %v", err)
			}
			if got, err := ReadState(claimed(t, stateJSON(t, st))); err != nil || got.PID != 0 {
				t.Errorf("ReadState calls the reused PID the sandbox: %+v %v", got, err)
			}
		})
	}
}

// TestDownStopsTheRecordedProcess is the normal path: the state records a
// live process with its identity; Down stops it and removes the directory.
func TestDownStopsTheRecordedProcess(t *testing.T) {
	p := startSleeper(t)
	var st State
	if err := st.Record(p.Process.Pid); err != nil {
		t.Fatal(err)
	}
	dir := claimed(t, stateJSON(t, st))
	if got, err := ReadState(dir); err != nil || got.PID != p.Process.Pid {
		t.Fatalf("ReadState: %+v %v", got, err)
	}
	var out bytes.Buffer
	if err := Down(dir, &out); err != nil {
		t.Fatal(err)
	}
	if running(p) {
		t.Errorf("the sandbox process still runs:\n%s", out.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the state directory is still there: %v", err)
	}
}

func TestStatStartTime(t *testing.T) {
	for _, c := range []struct {
		stat string
		want uint64
		ok   bool
	}{
		{"42 (sleep) S 1 42 42 0 -1 4194304 96 0 0 0 0 0 0 0 20 0 1 0 123456 8192 100 18446744073709551615", 123456, true},
		{"42 (a) b) (c) S 1 42 42 0 -1 4194304 96 0 0 0 0 0 0 0 20 0 1 0 777 8192", 777, true},
		{"42 (sleep) S 1 42", 0, false},
		{"no parenthesis", 0, false},
	} {
		got, err := statStartTime([]byte(c.stat))
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("%q: got %d, %v; want %d", c.stat, got, err, c.want)
		}
	}
}
