package nodeagent

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"text/tabwriter"
)

// findings records, for the issue 16 table, each security test's finding
// and result.
var findings struct {
	sync.Mutex
	rows map[string][2]string // by test name: finding, result
}

// finding marks t as the proof of an issue 16 finding; its result is printed
// in the table at the end of the run.
func finding(t *testing.T, what string) {
	t.Cleanup(func() {
		result := "PASS"
		if t.Failed() {
			result = "FAIL"
		}
		findings.Lock()
		defer findings.Unlock()
		if findings.rows == nil {
			findings.rows = map[string][2]string{}
		}
		findings.rows[t.Name()] = [2]string{what, result}
	})
}

// TestMain runs the tests, then prints the findings table of the security
// tests that ran.
func TestMain(m *testing.M) {
	code := m.Run()
	if len(findings.rows) > 0 {
		names := make([]string, 0, len(findings.rows))
		for n := range findings.rows {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			return findings.rows[names[i]][0]+names[i] < findings.rows[names[j]][0]+names[j]
		})
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "finding\ttest\tresult")
		for _, n := range names {
			fmt.Fprintf(w, "%s\t%s\t%s\n", findings.rows[n][0], n, findings.rows[n][1])
		}
		w.Flush()
	}
	os.Exit(code)
}
