package schema

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestReadFileLimit(t *testing.T) {
	dir := t.TempDir()
	sparse := filepath.Join(dir, "sparse")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(256 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	exact := filepath.Join(dir, "exact")
	if err := os.WriteFile(exact, make([]byte, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = ReadFileLimit(sparse, 1<<20)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("256 MiB file: want ErrTooLarge, got %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("allocated %d MiB, want < 8 MiB", alloc>>20)
	}
	if data, err := ReadFileLimit(exact, 1000); err != nil || len(data) != 1000 {
		t.Errorf("file at the limit: got %d bytes, %v", len(data), err)
	}
	if _, err := ReadFileLimit(exact, 999); !errors.Is(err, ErrTooLarge) {
		t.Errorf("file one byte over: want ErrTooLarge, got %v", err)
	}
	if _, err := LoadFile(sparse); err == nil || err.Error() != sparse+": file is larger than 1 MiB" {
		t.Errorf("LoadFile: got %v", err)
	}
}
