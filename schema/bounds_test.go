package schema

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

const header = "apiVersion: kosmos.io/v1alpha1\nkind: KosmosTopology\nmetadata: {name: t}\n"

// aliasBomb is the topology of issue 16: one anchored list of n CIDRs, and
// n clusters that alias it twice each. About 2 KB for n=100, it stands for
// 2n² CIDRs, and every pair of them overlaps.
func aliasBomb(n int) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: kosmos.io/v1alpha1\nkind: KosmosTopology\nmetadata: {name: t}\nspec:\n  clusters:\n")
	b.WriteString("  - {name: h, role: host, kubeconfig: {context: h}, network: {podCIDRs: &p [10.0.0.0/8")
	b.WriteString(strings.Repeat(",10.0.0.0/8", n-1))
	b.WriteString("]}}\n")
	b.WriteString("  - &c {name: a, role: member, kubeconfig: {context: a}, network: {podCIDRs: *p, serviceCIDRs: *p}}\n")
	b.WriteString(strings.Repeat("  - *c\n", n-1))
	return []byte(b.String())
}

// laughs is the classic "billion laughs": levels of lists of ten aliases of
// the level below, under a field the structure walk does not descend into.
func laughs(levels int) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: kosmos.io/v1alpha1\nkind: KosmosTopology\nmetadata: {name: t}\nlol:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= levels; i++ {
		prev := "*l" + string(rune('0'+i-1))
		b.WriteString("  l" + string(rune('0'+i)) + ": &l" + string(rune('0'+i)) + " [" + strings.TrimSuffix(strings.Repeat(prev+", ", 10), ", ") + "]\n")
	}
	return []byte(b.String())
}

// TestHostileDocumentsFailFastAndSmall loads documents built to expand, and
// checks each is refused with a positioned problem, allocating little. Before
// the bounds, the bomb of n=100 took seconds and gigabytes.
func TestHostileDocumentsFailFastAndSmall(t *testing.T) {
	cases := []struct {
		name, want string
		data       []byte
		maxMiB     uint64 // allocation bound
	}{
		{"alias bomb n=100", "b.yaml:53:5: alias *c: aliases expand to more than 10000 nodes in all", aliasBomb(100), 20},
		{"billion laughs", "b.yaml:8:47: alias *l2: aliases expand to more than 10000 nodes in all", laughs(9), 20},
		{"deep nesting", "b.yaml:4:67: nesting deeper than 64 levels", []byte(header + "x: " + strings.Repeat("[", 1000) + strings.Repeat("]", 1000)), 20},
		{"deep through an alias", "b.yaml:5:44: alias *d nests deeper than 64 levels", []byte(header + "x: &d " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\ny: " + strings.Repeat("[", 40) + "*d" + strings.Repeat("]", 40) + "\n"), 20},
		{"cycle", "b.yaml:4:8: alias *a refers to a node that contains it", []byte(header + "x: &a [*a, *a]\n"), 20},
		{"many nodes", "more than 100000 YAML nodes", []byte(header + "x: [" + strings.Repeat("0,", 150_000) + "0]\n"), 64}, // 300 KB: parsing it is the cost
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := Load("b.yaml", c.data)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			var ps Problems
			if !errors.As(err, &ps) || len(ps) != 1 || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want one problem %q, got %v", c.want, truncate(fmtErr(err), 400))
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > c.maxMiB<<20 {
				t.Errorf("allocated %d MiB, want < %d MiB", alloc>>20, c.maxMiB)
			}
			if took > 10*time.Second { // generous: a shared CI machine
				t.Errorf("took %v", took)
			}
		})
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestAnchorsWithinBudgetStillLoad keeps the habit of sharing a kubeconfig
// reference or a label set through an anchor.
func TestAnchorsWithinBudgetStillLoad(t *testing.T) {
	if _, err := LoadFile("testdata/valid/anchors-and-comments.yaml"); err != nil {
		t.Fatal(err)
	}
}

// TestProblemsAreCapped feeds a document within the node bounds whose CIDRs
// all overlap each other: the problems stop at maxProblems, with a last one
// that counts the rest.
func TestProblemsAreCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: kosmos.io/v1alpha1\nkind: KosmosTopology\nmetadata: {name: t}\nspec:\n  clusters:\n")
	b.WriteString("  - {name: h, role: host, kubeconfig: {context: h}, network: {podCIDRs: [10.0.0.0/8" + strings.Repeat(",10.0.0.0/8", 1999) + "]}}\n")
	b.WriteString("  - {name: a, role: member, kubeconfig: {context: a}, network: {podCIDRs: [10.0.0.0/8" + strings.Repeat(",10.0.0.0/8", 1999) + "]}}\n")
	_, err := Load("c.yaml", []byte(b.String()))
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	if len(ps) > maxProblems+1 || !strings.Contains(ps.Error(), "more problems not listed") {
		t.Errorf("got %d problems, want at most %d and a count of the rest", len(ps), maxProblems+1)
	}
}
