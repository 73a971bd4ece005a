package preview

import (
	"fmt"
	"strings"
)

// Markdown renders the preview for a pull request comment: a heading, the
// summary table (cluster, kind, create, change, delete), the notable
// changes as a list, and the new topology as a Mermaid diagram (GitHub and
// GitLab render a ```mermaid block). It is pure.
func Markdown(in Input) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## kosmos diff: topology %s\n\n", in.New.Name)
	sum := Summary(in.Report)
	b.WriteString(totals(in, sum) + "\n\n")
	if len(sum) > 0 {
		b.WriteString("| cluster | kind | create | change | delete |\n|---|---|--:|--:|--:|\n")
		for _, kc := range sum {
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %d |\n", kc.Cluster, kc.Kind, kc.Create, kc.Update, kc.Delete)
		}
		b.WriteString("\n")
	}
	b.WriteString("### Notable changes\n\n")
	for _, n := range Notable(in) {
		b.WriteString("- " + n + "\n")
	}
	b.WriteString("\n### Topology after the change\n\n```mermaid\n")
	b.WriteString(GraphOf(in.New, Gateways(in.Report)).Mermaid())
	b.WriteString("```\n")
	return b.String()
}

// totals is the line under the heading: how much changes where, and what
// the preview compared.
func totals(in Input, sum []KindCount) string {
	n := 0
	changed := map[string]bool{}
	for _, kc := range sum {
		n += kc.Create + kc.Update + kc.Delete
		changed[kc.Cluster] = true
	}
	how := "live: the clusters as they are, against the plan"
	if in.Offline {
		how = "offline: the old and the new topology planned over captured facts"
	}
	var unchanged []string
	for _, d := range in.Report.Clusters {
		if !changed[d.Cluster] {
			unchanged = append(unchanged, d.Cluster)
		}
	}
	line := fmt.Sprintf("**%d change(s)** in %d of %d cluster(s) (%s).", n, len(changed), len(in.Report.Clusters), how)
	if len(unchanged) > 0 {
		line += " No change in " + strings.Join(unchanged, ", ") + "."
	}
	return line
}
