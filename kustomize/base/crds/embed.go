// Package crds embeds the CRD manifests of this folder (Kosmos's, generated
// from schema/, and the Multi-Cluster Services ones copied from
// sigs.k8s.io/mcs-api by make generate), so that
// the kosmos binary can install them in every cluster before anything else.
package crds

import (
	"embed"
	"io/fs"
	"slices"
)

//go:embed *.yaml
var files embed.FS

// Manifests returns the CRD manifests, sorted by file name.
func Manifests() ([][]byte, error) {
	names, err := fs.Glob(files, "*.yaml")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	out := make([][]byte, 0, len(names))
	for _, n := range names {
		data, err := files.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, data)
	}
	return out, nil
}
