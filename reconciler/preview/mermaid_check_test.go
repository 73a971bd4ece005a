package preview

// Why a structural check and not Mermaid's own parser: Mermaid's flowchart
// parser ships only inside the mermaid npm package, whose parse() needs a
// DOM (DOMPurify) and so a browser or jsdom: a Node.js toolchain and a few
// hundred packages that `make test` would have to install on every
// machine. The renderer here emits a deliberately small subset of the
// flowchart grammar, and checkMermaid accepts exactly that subset, strictly:
// anything it does not know fails. Every golden file, and labels with every
// escaped character, were parsed by mermaid 11.17's own parser when this
// was written (testdata/mermaid-parse.mjs does it again by hand); this
// check keeps the output inside the subset the real parser accepted.
//
// The subset, line by line:
//
//	flowchart LR                         first line, once
//	  subgraph ID["TEXT"]                opens a group (no nesting)
//	    ID["TEXT"]                       declares a node, once, inside a group
//	  end                                closes the group
//	  ID ---|"TEXT"| ID                  links two declared nodes
//
// ID is [A-Za-z][A-Za-z0-9_]* and not a Mermaid keyword; TEXT holds no
// double quote, no "|" , no raw "<" or ">" except the line break <br/>, and
// "#" only as the start of an entity code (#quot; #35; …).

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	mmdID      = `([A-Za-z][A-Za-z0-9_]*)`
	mmdText    = `"([^"|]*)"`
	mmdSub     = regexp.MustCompile(`^  subgraph ` + mmdID + `\[` + mmdText + `\]$`)
	mmdNode    = regexp.MustCompile(`^    ` + mmdID + `\[` + mmdText + `\]$`)
	mmdLink    = regexp.MustCompile(`^  ` + mmdID + ` ---\|` + mmdText + `\| ` + mmdID + `$`)
	mmdEntity  = regexp.MustCompile(`#([a-z]+|[0-9]+);`)
	mmdKeyword = map[string]bool{"end": true, "subgraph": true, "graph": true, "flowchart": true, "style": true, "class": true, "classDef": true, "click": true, "linkStyle": true, "direction": true, "default": true}
)

// checkMermaid returns the first way text leaves the subset, or nil.
func checkMermaid(text string) error {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) == 0 || lines[0] != "flowchart LR" {
		return fmt.Errorf("line 1: want %q", "flowchart LR")
	}
	ids := map[string]bool{}
	declare := func(n int, id string) error {
		if mmdKeyword[id] || ids[id] {
			return fmt.Errorf("line %d: id %q is a keyword or declared twice", n, id)
		}
		ids[id] = true
		return nil
	}
	inGroup, linked := false, false
	for i, l := range lines[1:] {
		n := i + 2
		var err error
		switch m := [][]string{mmdSub.FindStringSubmatch(l), mmdNode.FindStringSubmatch(l), mmdLink.FindStringSubmatch(l)}; {
		case m[0] != nil && !inGroup && !linked:
			inGroup, err = true, errors2(declare(n, m[0][1]), checkText(n, m[0][2]))
		case m[1] != nil && inGroup:
			err = errors2(declare(n, m[1][1]), checkText(n, m[1][2]))
		case l == "  end" && inGroup:
			inGroup = false
		case m[2] != nil && !inGroup:
			linked = true
			if !ids[m[2][1]] || !ids[m[2][3]] {
				err = fmt.Errorf("line %d: link between undeclared nodes", n)
			}
			err = errors2(err, checkText(n, m[2][2]))
		default:
			err = fmt.Errorf("line %d: %q is outside the subset (or out of place)", n, l)
		}
		if err != nil {
			return err
		}
	}
	if inGroup {
		return fmt.Errorf("a subgraph is not closed")
	}
	return nil
}

// checkText checks a label: markup only as <br/>, "#" only in entities.
func checkText(n int, s string) error {
	plain := mmdEntity.ReplaceAllString(strings.ReplaceAll(s, "<br/>", ""), "")
	if strings.ContainsAny(plain, "<>#") || s == "" {
		return fmt.Errorf("line %d: label %q holds markup, a stray #, or nothing", n, s)
	}
	return nil
}

func errors2(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
