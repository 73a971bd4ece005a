package plan

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	yaml3 "go.yaml.in/yaml/v3"
)

// refuseAliases parses data as YAML nodes, without expanding anything, and
// returns an error at the first anchor or alias, or at nesting deeper than
// 64 levels. Facts are machine-written, so neither is ever legitimate.
func refuseAliases(data []byte) error {
	dec := yaml3.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml3.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := plainNode(&doc, 0); err != nil {
			return err
		}
	}
}

func plainNode(n *yaml3.Node, depth int) error {
	switch {
	case depth > 64:
		return fmt.Errorf("line %d:%d: nesting deeper than 64 levels", n.Line, n.Column)
	case n.Kind == yaml3.AliasNode:
		return fmt.Errorf("line %d:%d: YAML alias *%s: facts hold no aliases", n.Line, n.Column, n.Value)
	case n.Anchor != "":
		return fmt.Errorf("line %d:%d: YAML anchor &%s: facts hold no anchors", n.Line, n.Column, n.Anchor)
	}
	for _, c := range n.Content {
		if err := plainNode(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}
