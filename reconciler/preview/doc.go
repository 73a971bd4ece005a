// Package preview turns a planned change into text a reviewer reads: the
// Markdown a pull request comment carries (`kosmos diff -o markdown`) and
// the picture of a topology (`kosmos graph`, Mermaid or Graphviz DOT).
//
// # Pure
//
// Every function here is pure: it reads a topology and a
// reconciler.DiffReport (the plan's objects of every cluster, before and
// after) and returns text. Nothing reaches a cluster; the command layer
// computes the report (live or offline) and prints what this package
// renders, so the preview shows exactly the objects apply would write.
//
// # What it says
//
//   - Summary: per cluster and kind, the objects created, changed, deleted.
//   - Notable changes in words: clusters that join or leave, network mode
//     and GlobalCIDR changes, gateway moves, cross-cluster routes added and
//     removed per cluster pair, distribution policies created, changed or
//     removed, the objects prune deletes, and the deletion guard's verdict.
//   - The new topology as a graph: clusters grouped by region with their
//     role, mode, families, ranges (real → global where mapped) and elected
//     gateway, and a tunnel between every two clusters ClusterLink joins.
//
// # Usage
//
//	md := preview.Markdown(preview.Input{Old: old, New: t, Report: rep, Offline: true})
//	fmt.Print(preview.GraphOf(t, preview.Gateways(rep)).Mermaid())
package preview
