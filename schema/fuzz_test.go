package schema

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func equalJSON(t testing.TB, a, b any) bool {
	t.Helper()
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return string(ja) == string(jb)
}

// FuzzLoad feeds arbitrary bytes to the loader. It must never panic; it
// either returns a topology that validates, or Problems that each carry a
// message. The seeds are every file in testdata (valid and broken) and the
// example, and alias-heavy documents, so `go test` runs them all.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.yaml")
	seeds = append(seeds, filepath.Join("..", "topology.example.yaml"))
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &a [*a, *a]\n"))
	// Alias-heavy seeds: the fuzzer mutates them around the bounds.
	f.Add(aliasBomb(3))
	f.Add(aliasBomb(20))
	f.Add(laughs(3))
	f.Add([]byte(header + "x: &d [[[[[a]]]]]\ny: [[[[*d, *d]]]]\nz: &e {a: *d, b: *d, <<: *d}\n"))
	f.Add([]byte(header + "spec: &s {clusters: [&c {name: h, role: host, kubeconfig: &k {context: h}}, {name: m, role: member, kubeconfig: *k}]}\nx: [*s, *c, *k]\n"))
	f.Add([]byte("apiVersion: kosmos.io/v1alpha1\nkind: KosmosTopology\nspec: {clusters: [{name: x, role: host, kubeconfig: {context: x}, network: {enabled: false}, ? [a]: b}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		topo, err := Load("fuzz.yaml", data)
		if err == nil {
			if ps := Validate(topo); len(ps) != 0 {
				t.Fatalf("loaded topology does not validate again: %v", ps)
			}
			return
		}
		var ps Problems
		if !errors.As(err, &ps) || len(ps) == 0 {
			t.Fatalf("want Problems, got %T %v", err, err)
		}
		for _, p := range ps {
			if p.Message == "" || p.File != "fuzz.yaml" {
				t.Fatalf("problem without message or file: %+v", p)
			}
		}
	})
}
