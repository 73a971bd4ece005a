package reconciler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"kosmos.io/kosmos/schema"
)

// TestFileSourceRefusesOversizeFile reads a 256 MiB (sparse) topology file:
// Read must refuse it having read little more than the limit.
func TestFileSourceRefusesOversizeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "topology.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(256 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err = FileSource{Path: path}.Read(context.Background())
	runtime.ReadMemStats(&after)
	var ps schema.Problems
	if !errors.As(err, &ps) || !strings.Contains(err.Error(), "topology.yaml: file is larger than 1 MiB") {
		t.Fatalf("want a problem saying the file is too large, got %.200v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("allocated %d MiB reading an oversize file, want < 16 MiB", alloc>>20)
	}
}
