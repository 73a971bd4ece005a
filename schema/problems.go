package schema

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with a topology: where (file, line, column and
// field path) and what. Line and Col are 0 when the problem has no position
// (a topology read from a cluster object, say).
type Problem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// String renders the problem as `file:line:col: path: message`, leaving out
// the parts it does not have.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", p.Line, p.Col)
		}
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in one topology. As an error it lists them
// all, one a line, sorted by position.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sort orders problems by file, line, column, then path and message, and
// drops exact duplicates.
func (ps Problems) sort() Problems {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Message, b.Message))
	})
	return slices.Compact(ps)
}

// maxProblems is the most problems a collector keeps: a hostile document
// (a thousand overlapping CIDRs, say) could otherwise produce problems
// quadratic in its size. The rest are counted, not formatted.
const maxProblems = 1000

// collector gathers problems with printf-style helpers, keeping at most
// maxProblems of them.
type collector struct {
	ps      Problems
	dropped int
}

func (c *collector) add(path, format string, args ...any) {
	if len(c.ps) >= maxProblems {
		c.dropped++
		return
	}
	c.ps = append(c.ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// problems returns what was collected, with a last problem saying how many
// were left out.
func (c *collector) problems() Problems {
	if c.dropped == 0 {
		return c.ps
	}
	return append(c.ps, Problem{Message: fmt.Sprintf("%d more problems not listed: fix the ones above first", c.dropped)})
}
