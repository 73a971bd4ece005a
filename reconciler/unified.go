package reconciler

import (
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

func lines(s string) []string {
	if s == "" {
		return nil // an absent object has no lines, not one empty line
	}
	return difflib.SplitLines(s)
}

// Unified renders a change as a unified diff; with colour, additions are
// green and removals red.
func Unified(c Change, colour bool) string {
	from, to := "a/"+c.Cluster+"/"+c.Key, "b/"+c.Cluster+"/"+c.Key
	if c.Old == "" {
		from = "/dev/null"
	}
	if c.New == "" {
		to = "/dev/null"
	}
	text, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: lines(c.Old), B: lines(c.New), FromFile: from, ToFile: to, Context: 3,
	})
	if !colour {
		return text
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(text, "\n") {
		switch {
		case strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+++"):
			b.WriteString("\x1b[32m" + strings.TrimSuffix(l, "\n") + "\x1b[0m\n")
		case strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "---"):
			b.WriteString("\x1b[31m" + strings.TrimSuffix(l, "\n") + "\x1b[0m\n")
		default:
			b.WriteString(l)
		}
	}
	return b.String()
}
