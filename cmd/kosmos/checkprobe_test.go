package main

import (
	"errors"
	"strings"
	"testing"

	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/reconciler"
)

// TestDroppedRow: clusters the kubeconfig does not reach get a FAIL row
// naming them and why, put first, instead of the probe rows passing "N of
// N" over the clusters that were reached; with every cluster reached there
// is no such row.
func TestDroppedRow(t *testing.T) {
	all := []reconciler.Cluster{{Name: "a"}, {Name: "b"}}
	if row := droppedRow(all, "the probes"); row != nil {
		t.Errorf("every cluster reached: %+v", row)
	}
	some := []reconciler.Cluster{{Name: "a"}, {Name: "b", Err: errors.New(`context "b" not found`)}, {Name: "c", Err: errors.New("dial tcp: refused")}}
	row := droppedRow(some, "the probes")
	want := `not reached, left out of the probes: cluster b: context "b" not found; cluster c: dial tcp: refused`
	if row == nil || row.Result != "FAIL" || row.Name != "probe clusters" || row.Detail != want {
		t.Fatalf("row %+v, want FAIL %q", row, want)
	}
	checks, err := withDropped(row)([]check.Check{{Name: "probe endpoints", Result: "PASS", Detail: "2 of 2"}}, nil)
	if err != nil || len(checks) != 2 || !strings.HasPrefix(checks[0].Detail, "not reached") {
		t.Errorf("checks %+v, err %v", checks, err)
	}
}
