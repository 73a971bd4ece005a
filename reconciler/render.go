package reconciler

import (
	"bytes"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"

	"kosmos.io/kosmos/reconciler/apply"
	"kosmos.io/kosmos/reconciler/plan"
)

// Render prints the desired objects of every cluster: YAML documents headed
// by a comment naming the cluster, or (asJSON) one JSON document. What the
// plan left out for lack of facts is said, as comments (or "unobserved").
func Render(p plan.Plan, asJSON bool) ([]byte, error) {
	if asJSON {
		type cluster struct {
			Name       string `json:"name"`
			Objects    []any  `json:"objects"`
			Unobserved string `json:"unobserved,omitempty"`
		}
		var out struct {
			Clusters []cluster `json:"clusters"`
			Problems []string  `json:"problems,omitempty"`
		}
		for _, pc := range p.Clusters {
			c := cluster{Name: pc.Name, Objects: []any{}, Unobserved: pc.Unobserved}
			for _, o := range pc.Objects {
				m, err := apply.Clean(o)
				if err != nil {
					return nil, err
				}
				c.Objects = append(c.Objects, m)
			}
			out.Clusters = append(out.Clusters, c)
		}
		out.Problems = p.Problems
		b, err := json.MarshalIndent(out, "", "  ")
		return append(b, '\n'), err
	}
	var b bytes.Buffer
	for _, pr := range p.Problems {
		fmt.Fprintf(&b, "# problem: %s\n", pr)
	}
	for _, pc := range p.Clusters {
		if pc.Unobserved != "" {
			fmt.Fprintf(&b, "# cluster %s %s\n", pc.Name, pc.Unobserved)
		}
	}
	for _, pc := range p.Clusters {
		for _, o := range pc.Objects {
			m, err := apply.Clean(o)
			if err != nil {
				return nil, err
			}
			y, err := yaml.Marshal(m)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "---\n# cluster: %s\n%s", pc.Name, y)
		}
	}
	return b.Bytes(), nil
}
