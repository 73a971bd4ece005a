package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

func kosmos(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateExitCodes(t *testing.T) {
	for _, c := range []struct {
		name       string
		args       []string
		code       int
		wantStdout string
		wantStderr string
	}{
		{"valid example", []string{"validate", "../../topology.example.yaml"}, 0, "../../topology.example.yaml: valid (4 clusters)\n", ""},
		{"valid with -f", []string{"validate", "-f", "../../schema/testdata/valid/minimal.yaml"}, 0, "valid (3 clusters)", ""},
		{"invalid", []string{"validate", "-f", "../../schema/testdata/invalid/cidr-not-a-cidr.yaml"}, 1,
			`cidr-not-a-cidr.yaml:19:20: spec.clusters[1].network.podCIDRs[0]: "10.0.0.0/33" is not a CIDR`, ""},
		{"invalid wins over valid", []string{"validate", "../../topology.example.yaml", "../../schema/testdata/invalid/no-host.yaml"}, 1, "invalid: 1 problem(s)", ""},
		{"missing file", []string{"validate", "-f", "nope.yaml"}, 2, "", "nope.yaml: open nope.yaml: no such file or directory"},
		{"no file", []string{"validate"}, 2, "", "no file given"},
		{"bad output", []string{"validate", "-o", "xml", "x.yaml"}, 2, "", `-o "xml"`},
		{"unknown command", []string{"frobnicate"}, 2, "", "unknown command"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := kosmos(c.args...)
			if code != c.code || !strings.Contains(out, c.wantStdout) || !strings.Contains(errs, c.wantStderr) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, c.code, out, errs)
			}
		})
	}
}

func TestValidateJSON(t *testing.T) {
	code, out, _ := kosmos("validate", "-o", "json", "../../topology.example.yaml", "../../schema/testdata/invalid/two-hosts.yaml")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var res []validateResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res) != 2 || !res[0].Valid || res[1].Valid || len(res[1].Problems) != 2 || res[1].Problems[0].Line != 15 || res[1].Problems[0].Path != "spec.clusters[1].role" {
		t.Errorf("unexpected result: %+v", res)
	}
}

func TestSchemaCommandPrintsSchema(t *testing.T) {
	code, out, _ := kosmos("schema")
	var s map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s["title"] != "KosmosTopology" {
		t.Errorf("exit %d, output starts %.80q", code, out)
	}
}

func TestHelpHasExamples(t *testing.T) {
	code, out, _ := kosmos("validate", "--help")
	if code != 0 || !strings.Contains(out, "kosmos validate -f topology.yaml") || !strings.Contains(out, "Exit status") {
		t.Errorf("exit %d, help:\n%s", code, out)
	}
}

// TestKubectlPluginName: started as kubectl-kosmos (what make install
// links for kubectl), help and usage say "kubectl kosmos".
func TestKubectlPluginName(t *testing.T) {
	for argv0, want := range map[string]string{"kubectl-kosmos": "kubectl kosmos", "kubectl-kosmos.exe": "kubectl kosmos", "kosmos": "kosmos", "kosmos-dev": "kosmos"} {
		if got := displayName(argv0); got != want {
			t.Errorf("displayName(%q) = %q, want %q", argv0, got, want)
		}
	}
	defer func(old string) { invokedAs = old }(invokedAs)
	invokedAs = "kubectl-kosmos"
	code, out, _ := kosmos("diff", "--help")
	if code != 0 || !strings.Contains(out, "kubectl kosmos diff -f FILE") {
		t.Errorf("exit %d, help:\n%s", code, out)
	}
}

// TestMakeInstall: make install puts the binary into DESTDIR/PREFIX/bin as
// kosmos, with the kubectl-kosmos link beside it (make -n: the commands,
// not a build).
func TestMakeInstall(t *testing.T) {
	out, err := exec.Command("make", "-C", "../..", "-n", "install", "DESTDIR=/stage", "PREFIX=/opt/k").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n install: %v\n%s", err, out)
	}
	for _, want := range []string{
		`install -m 0755 bin/kosmos "/stage/opt/k/bin/kosmos"`,
		`ln -sf kosmos "/stage/opt/k/bin/kubectl-kosmos"`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make install does not run %q:\n%s", want, out)
		}
	}
	out, err = exec.Command("make", "-C", "../..", "-n", "install").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"/usr/local/bin/kubectl-kosmos"`) {
		t.Errorf("default PREFIX is not /usr/local: %v\n%s", err, out)
	}
}
