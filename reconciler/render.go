package reconciler

import (
	"bytes"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/reconciler/apply"
	"kosmos.io/kosmos/reconciler/desired"
	"kosmos.io/kosmos/reconciler/netplan"
)

// Render prints the desired objects of every cluster: YAML documents headed
// by a comment naming the cluster, or (asJSON) one JSON document.
func Render(st desired.State, asJSON bool) ([]byte, error) {
	if asJSON {
		type cluster struct {
			Name    string `json:"name"`
			Objects []any  `json:"objects"`
		}
		var out struct {
			Clusters []cluster `json:"clusters"`
			Problems []string  `json:"problems,omitempty"`
		}
		for _, co := range st.Clusters {
			c := cluster{Name: co.Cluster, Objects: []any{}}
			for _, o := range co.Objects {
				m, err := apply.Clean(o)
				if err != nil {
					return nil, err
				}
				c.Objects = append(c.Objects, m)
			}
			out.Clusters = append(out.Clusters, c)
		}
		out.Problems = st.Problems
		b, err := json.MarshalIndent(out, "", "  ")
		return append(b, '\n'), err
	}
	var b bytes.Buffer
	for _, p := range st.Problems {
		fmt.Fprintf(&b, "# problem: %s\n", p)
	}
	for _, co := range st.Clusters {
		for _, o := range co.Objects {
			m, err := apply.Clean(o)
			if err != nil {
				return nil, err
			}
			y, err := yaml.Marshal(m)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "---\n# cluster: %s\n%s", co.Cluster, y)
		}
	}
	return b.Bytes(), nil
}

// LoadFacts reads facts captured by `kosmos facts`.
func LoadFacts(data []byte) (netplan.Facts, error) {
	var f netplan.Facts
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("facts: %w", err)
	}
	return f, nil
}
