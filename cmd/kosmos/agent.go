package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"kosmos.io/kosmos/nodeagent"
)

func newAgentCommand() *cobra.Command {
	var file string
	var once, teardown bool
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Make this node's kernel hold its ClusterLink NodeConfig",
		Long: `Agent applies a NodeConfig to the kernel of the network namespace it runs in:
VXLAN devices (vx-*), their addresses, routes (protocol 75), static FDB and
permanent neighbour entries, and NAT in its own chains (KOSMOS-PREROUTING,
KOSMOS-POSTROUTING, KOSMOS-FORWARD). It touches nothing else. A config that
fails validation is refused whole and the kernel keeps its last good state.
Applying the same config twice makes no change.

--once applies a NodeConfig read from a file and exits (0 applied, 1 refused
or failed); --teardown removes everything the agent owns. Both serve to debug
a node by hand and to test the agent without an API server.`,
		Example: `  kosmos agent --node-config node1.yaml --once
  ip netns exec node1 kosmos agent --node-config node1.yaml --once
  kosmos agent --teardown`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if once == teardown {
				return &exitError{exitError2, errors.New("agent: give exactly one of --once (with --node-config) or --teardown")}
			}
			k, err := nodeagent.NewLinuxKernel()
			if err != nil {
				return &exitError{exitError2, err}
			}
			var res nodeagent.Result
			if teardown {
				res, err = nodeagent.Teardown(k)
			} else {
				if file == "" {
					return &exitError{exitError2, errors.New("agent: --once needs --node-config FILE")}
				}
				nc, lerr := nodeagent.LoadNodeConfigFile(file)
				if lerr != nil {
					return &exitError{exitInvalid, lerr}
				}
				res, err = nodeagent.Set(k, &nc.Spec)
			}
			out := cmd.OutOrStdout()
			for _, op := range res.Applied {
				fmt.Fprintln(out, op)
			}
			fmt.Fprintf(out, "agent: %d change(s) applied\n", len(res.Applied))
			if err != nil {
				return &exitError{exitInvalid, err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "node-config", "", "NodeConfig file to apply (with --once)")
	cmd.Flags().BoolVar(&once, "once", false, "apply the NodeConfig file and exit")
	cmd.Flags().BoolVar(&teardown, "teardown", false, "remove every device, route, entry and chain the agent owns, and exit")
	return cmd
}
