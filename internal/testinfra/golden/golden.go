// Package golden compares what a test produced with a file under testdata,
// and rewrites the file when the test runs with -update (then review the
// change with git diff before committing it).
//
//	golden.Assert(t, "testdata/plan.golden.yaml", got)
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
)

var update = flag.Bool("update", false, "rewrite the golden files (then review the diff)")

// Assert compares got with the file at path; with -update it writes got
// there first. A difference fails the test with a unified diff.
func Assert(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it; review it)", err)
	}
	if string(want) == string(got) {
		return
	}
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(want)), B: difflib.SplitLines(string(got)), FromFile: path, ToFile: "got", Context: 3,
	})
	t.Errorf("%s differs (go test -update rewrites it; review the diff):\n%s", path, d)
}
