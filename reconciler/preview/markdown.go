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
	changes := changesOf(in.Report)
	sum := summary(in.Report, changes)
	b.WriteString(totals(in, sum) + "\n\n")
	if len(sum) > 0 {
		b.WriteString("| cluster | kind | create | change | delete |\n|---|---|--:|--:|--:|\n")
		for _, kc := range sum {
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %d |\n", kc.Cluster, kc.Kind, kc.Create, kc.Update, kc.Delete)
		}
		b.WriteString("\n")
	}
	b.WriteString("### Notable changes\n\n")
	for _, n := range notable(in, changes) {
		b.WriteString("- " + n + "\n")
	}
	b.WriteString("\n### Topology after the change\n\n")
	b.WriteString(diagram(GraphOf(in.New, Gateways(in.Report))))
	return b.String()
}

// maxDrawnTunnels bounds the links of the diagram in a comment: a full mesh
// of a large fleet would hide the clusters and outgrow a comment's size
// (GitHub takes 65,536 characters). kosmos graph draws them all.
const maxDrawnTunnels = 60

// diagram is the Mermaid block of the new topology, with its tunnels left
// out (and counted) when there are more than maxDrawnTunnels.
func diagram(g Graph) string {
	note := ""
	if n := len(g.Tunnels); n > maxDrawnTunnels {
		g.Tunnels = nil
		note = fmt.Sprintf("\n%d tunnels join the linked clusters (every two that share an IP family); too many to draw here: `kosmos graph -f FILE` draws them.\n", n)
	}
	return "```mermaid\n" + g.Mermaid() + "```\n" + note
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
