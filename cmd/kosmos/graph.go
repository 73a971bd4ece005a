package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"kosmos.io/kosmos/reconciler/preview"
)

// graphHelp is the long help of the command.
const graphHelp = `Graph draws a topology: its clusters grouped by region, each with its
role, network mode, IP families and pod and service ranges (real → global
where GlobalCIDRs map them), and a tunnel between every two clusters
ClusterLink joins (both linked, a family in common). It reads only the
file: no cluster is reached, so a Gateway-mode cluster shows its number of
gateway candidates, not the elected node ('kosmos diff -o markdown' names
it from the plan).

Output (-o):
  mermaid  a Mermaid flowchart (the default): GitHub and GitLab render it in
           a ` + "```mermaid" + ` block of any Markdown file, issue or comment
  dot      Graphviz DOT

SVG is not drawn here (it would take a layout engine): pipe the DOT output
through Graphviz, 'kosmos graph -f FILE -o dot | dot -Tsvg > topology.svg',
or render the Mermaid text with mermaid-cli (mmdc).`

func newGraphCommand() *cobra.Command {
	var file, output string
	cmd := &cobra.Command{
		Use:   "graph -f FILE [-o mermaid|dot]",
		Short: "Draw the topology: clusters, modes, tunnels, GlobalCIDR maps (Mermaid or DOT)",
		Long:  graphHelp,
		Example: `  kosmos graph -f topology.yaml > topology.mmd
  kosmos graph -f topology.yaml -o dot | dot -Tsvg > topology.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := loadTopology(file)
			if err != nil {
				return err
			}
			g := preview.GraphOf(t, nil)
			switch output {
			case "mermaid":
				fmt.Fprint(cmd.OutOrStdout(), g.Mermaid())
			case "dot":
				fmt.Fprint(cmd.OutOrStdout(), g.DOT())
			default:
				return &exitError{exitError2, fmt.Errorf("-o %q: want mermaid or dot (svg: pipe -o dot through Graphviz's dot -Tsvg)", output)}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "topology file")
	cmd.Flags().StringVarP(&output, "output", "o", "mermaid", "mermaid or dot")
	return cmd
}
