package schema

// Bounds on what one topology document may cost.
//
// A YAML alias is a pointer to an anchored node: a few bytes that stand for a
// whole subtree. Every step after parsing (the structure walk, the decode into
// Go values, validation) sees the expanded tree, so a 2 KB file of anchors
// and aliases can stand for millions of nodes; yaml.v3's own alias budget only
// applies when it decodes, after the structure walk has already paid for the
// expansion. The loader therefore measures the expanded tree first, before
// anything walks it, and refuses a document that is too large, too deep or
// whose aliases add more than a small budget. The measurement is memoised per
// anchored node, so it costs time linear in the parsed (unexpanded) tree.
//
// The limits are far above any real topology (a hundred clusters are a few
// thousand nodes, at most ten levels deep; anchors in real files share a
// kubeconfig reference or a label set, tens of nodes).

import (
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

const (
	// maxNodes is the most YAML nodes a document may hold once its aliases
	// are expanded.
	maxNodes = 100_000
	// maxAliasNodes is the most nodes all aliases of a document may add
	// together (an alias adds the nodes of what it refers to).
	maxAliasNodes = 10_000
	// maxDepth is the deepest nesting of mappings and lists allowed.
	maxDepth = 64
)

// treeSize measures a YAML tree with its aliases expanded, stopping at the
// first limit crossed.
type treeSize struct {
	// size and height of every anchored node measured so far.
	size   map[*yaml.Node]int
	height map[*yaml.Node]int
	// busy holds the anchored nodes being measured: an alias to one of them
	// is a cycle.
	busy       map[*yaml.Node]bool
	nodes      int // nodes counted, aliases expanded
	aliasNodes int // of which added by aliases
	problem    *Problem
}

// checkBounds returns a problem when the tree under root crosses one of the
// limits above, at the node where it does; nil otherwise.
func checkBounds(root *yaml.Node) Problems {
	ts := &treeSize{size: map[*yaml.Node]int{}, height: map[*yaml.Node]int{}, busy: map[*yaml.Node]bool{}}
	ts.measure(root, 1)
	if ts.problem != nil {
		return Problems{*ts.problem}
	}
	return nil
}

func (ts *treeSize) fail(n *yaml.Node, format string, args ...any) {
	if ts.problem == nil {
		ts.problem = &Problem{Line: n.Line, Col: n.Column, Message: fmt.Sprintf(format, args...)}
	}
}

// measure returns the expanded size and height of n, found at depth. After a
// problem it returns at once.
func (ts *treeSize) measure(n *yaml.Node, depth int) (size, height int) {
	if ts.problem != nil {
		return 0, 0
	}
	if depth > maxDepth {
		ts.fail(n, "nesting deeper than %d levels: a topology is only a few levels deep", maxDepth)
		return 0, 0
	}
	if n.Kind == yaml.AliasNode {
		return ts.alias(n, depth)
	}
	if n.Anchor != "" {
		ts.busy[n] = true
		defer delete(ts.busy, n)
	}
	size, height = 1, 1
	ts.count(n, 1)
	for _, c := range n.Content {
		s, h := ts.measure(c, depth+1)
		size, height = size+s, max(height, h+1)
	}
	if n.Anchor != "" && ts.problem == nil {
		ts.size[n], ts.height[n] = size, height
	}
	return size, height
}

// alias measures an alias: its target's size counts again, against the
// alias budget.
func (ts *treeSize) alias(n *yaml.Node, depth int) (size, height int) {
	target := n.Alias
	if target == nil {
		return 0, 0
	}
	if ts.busy[target] {
		ts.fail(n, "alias *%s refers to a node that contains it", n.Value)
		return 0, 0
	}
	s, known := ts.size[target]
	if !known {
		// An alias comes after its anchor in the document, so its target
		// was measured first; only a measurement cut short leaves none.
		ts.fail(n, "alias *%s refers to a node that could not be measured", n.Value)
		return 0, 0
	}
	if h := ts.height[target]; depth+h-1 > maxDepth {
		ts.fail(n, "alias *%s nests deeper than %d levels: a topology is only a few levels deep", n.Value, maxDepth)
		return 0, 0
	}
	ts.aliasNodes += s
	if ts.aliasNodes > maxAliasNodes {
		ts.fail(n, "alias *%s: aliases expand to more than %d nodes in all; write the repeated part out instead of aliasing it", n.Value, maxAliasNodes)
		return 0, 0
	}
	ts.count(n, s)
	return s, ts.height[target]
}

// count adds s nodes to the total and fails at n when it crosses maxNodes.
func (ts *treeSize) count(n *yaml.Node, s int) {
	ts.nodes += s
	if ts.nodes > maxNodes {
		ts.fail(n, "the document holds more than %d YAML nodes (aliases expanded): a topology is far smaller", maxNodes)
	}
}
