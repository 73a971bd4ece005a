package plan

import (
	"strings"
	"testing"
)

func TestLoadFactsRefusesHostileInput(t *testing.T) {
	cases := []struct{ name, data, want string }{
		{"alias", "a: &n {nodes: []}\nb: *n\n", "line 1:4: YAML anchor &n"},
		{"alias bomb", "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", "YAML anchor &a"},
		{"deep", "a: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n", "nesting deeper than 64 levels"},
		{"too large", strings.Repeat("#", MaxFactsSize+1), "more than 8 MiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadFacts([]byte(c.data))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("want an error with %q, got %v", c.want, err)
			}
		})
	}
	if _, err := LoadFacts([]byte("a: {}\n")); err != nil {
		t.Errorf("plain facts: %v", err)
	}
}
