package v1alpha1

import (
	"slices"
	"strings"
)

// AnnotationStorageClasses lists, on a virtual node, the StorageClasses
// its member cluster offers: their names, sorted, comma-separated. The
// tree writes it; KosmosVolumeBinding reads it to let a pod whose claims
// are unbound onto the virtual node of a member that can provision them.
// A virtual node without it offers no class.
const AnnotationStorageClasses = "kosmos.io/storage-classes"

// FormatStorageClasses is the annotation value for the class names given
// (sorted, duplicates and empty names dropped).
func FormatStorageClasses(names []string) string {
	out := slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == "" })
	slices.Sort(out)
	return strings.Join(slices.Compact(out), ",")
}

// ParseStorageClasses reads the annotation value back into a set.
func ParseStorageClasses(v string) map[string]bool {
	out := map[string]bool{}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out[s] = true
		}
	}
	return out
}
