package scheduler_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"kosmos.io/kosmos/scheduler"
)

// TestRegistryHasTheShippedPlugins: every Kosmos plugin the shipped
// configuration names is registered, and every registered one is used.
func TestRegistryHasTheShippedPlugins(t *testing.T) {
	shipped, err := os.ReadFile(filepath.Join("..", "kustomize", "base", "scheduler", "scheduler-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var named []string
	for _, m := range regexp.MustCompile(`name: (Kosmos\w+)`).FindAllStringSubmatch(string(shipped), -1) {
		if !slices.Contains(named, m[1]) {
			named = append(named, m[1])
		}
	}
	var registered []string
	for name := range scheduler.Registry() {
		registered = append(registered, name)
	}
	slices.Sort(named)
	slices.Sort(registered)
	if !slices.Equal(named, registered) {
		t.Errorf("the shipped configuration names %v, the registry holds %v", named, registered)
	}
}
