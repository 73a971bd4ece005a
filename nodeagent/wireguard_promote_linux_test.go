package nodeagent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPromoteChecksTheNextKeyFile: promotion renames the next key file
// only when it still holds the key the peers were handed over to; a key
// written there since (or none) is not promoted and the node's key file
// stays.
func TestPromoteChecksTheNextKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	cur, err := LoadOrCreateWireGuardKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	next, err := RotateWireGuardKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWireGuard(cur, dir, nil)
	w.rot.next = next
	// Someone replaces the next key file after the hand-over began.
	other, err := createWireGuardKey(dir, filepath.Join(dir, WireGuardNextKeyFile), false)
	if err != nil {
		t.Fatal(err)
	}
	err = w.promote(next)
	if err == nil || !strings.Contains(err.Error(), "not promoted") {
		t.Fatalf("promote over a replaced next key file: %v, want a refusal", err)
	}
	if k, _ := loadWireGuardKeyFile(dir, WireGuardKeyFile); k == nil || k.public != cur.public {
		t.Errorf("the key file changed on a refused promotion")
	}
	if k, _ := loadWireGuardKeyFile(dir, WireGuardNextKeyFile); k == nil || k.public != other.public {
		t.Errorf("the next key file changed on a refused promotion")
	}
	if w.key != cur || w.rot.next != next {
		t.Errorf("the agent's keys changed on a refused promotion")
	}
	// The file gone: refused too.
	if err := os.Remove(filepath.Join(dir, WireGuardNextKeyFile)); err != nil {
		t.Fatal(err)
	}
	if err := w.promote(next); err == nil {
		t.Errorf("promote without a next key file: no error")
	}
	// The file holding next: promoted.
	if err := writeWireGuardKeyFile(dir, filepath.Join(dir, WireGuardNextKeyFile), next.private, true); err != nil {
		t.Fatal(err)
	}
	if err := w.promote(next); err != nil {
		t.Fatalf("promote: %v", err)
	}
	if k, _ := loadWireGuardKeyFile(dir, WireGuardKeyFile); k == nil || k.public != next.public || w.key != next || w.rot.next != nil {
		t.Errorf("not promoted")
	}
}

// TestNextKeyFileNeverReplaced: the next key is linked into place, so a
// next key file that appeared meanwhile is kept, with a clear error.
func TestNextKeyFileNeverReplaced(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	first, err := RotateWireGuardKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = createWireGuardKey(dir, filepath.Join(dir, WireGuardNextKeyFile), true)
	if !errors.Is(err, errKeyFileExists) {
		t.Fatalf("exclusive write over an existing next key: %v, want errKeyFileExists", err)
	}
	if k, _ := loadWireGuardKeyFile(dir, WireGuardNextKeyFile); k == nil || k.public != first.public {
		t.Errorf("the next key file was replaced")
	}
	if again, err := RotateWireGuardKey(dir); err != nil || again.public != first.public {
		t.Errorf("a rotation under way: %v, key kept %v", err, err == nil && again.public == first.public)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("state directory holds %d files, want 1 (no temporary left)", len(ents))
	}
}
