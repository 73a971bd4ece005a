package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"kosmos.io/kosmos/nodeagent"
	"kosmos.io/kosmos/schema/v1alpha1"
)

func newAgentCommand() *cobra.Command {
	var file string
	var once, teardown bool
	var resync time.Duration
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Make this node's kernel hold its ClusterLink NodeConfig",
		Long: `Agent applies a NodeConfig to the kernel of the network namespace it runs in:
VXLAN devices (vx-*), their addresses, routes (protocol 75), static FDB and
permanent neighbour entries, and NAT in its own chains (KOSMOS-PREROUTING,
KOSMOS-POSTROUTING, KOSMOS-FORWARD). It touches nothing else. A config that
fails validation is refused whole and the kernel keeps its last good state.
Applying the same config twice makes no change.

With --node-config alone it keeps running: it re-reads the file and repairs
drift on every resync period and on every route or link change in the kernel,
so a route deleted by hand is back within moments. --once applies the file and
exits (0 applied, 1 refused or failed); --teardown removes everything the agent
owns. These serve to debug a node by hand and to test the agent without an API
server.`,
		Example: `  kosmos agent --node-config node1.yaml --once
  ip netns exec node1 kosmos agent --node-config node1.yaml --once
  kosmos agent --node-config node1.yaml --resync 5s
  kosmos agent --teardown`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if once && teardown {
				return &exitError{exitError2, errors.New("agent: --once and --teardown exclude each other")}
			}
			if !teardown && file == "" {
				return &exitError{exitError2, errors.New("agent: --node-config FILE is required (or --teardown)")}
			}
			k, err := nodeagent.NewLinuxKernel()
			if err != nil {
				return &exitError{exitError2, err}
			}
			if !once && !teardown {
				return runAgent(cmd.Context(), k, file, resync)
			}
			var res nodeagent.Result
			if teardown {
				res, err = nodeagent.Teardown(k)
			} else {
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
	cmd.Flags().DurationVar(&resync, "resync", 10*time.Second, "period of the full repair pass when running continuously")
	cmd.Flags().BoolVar(&teardown, "teardown", false, "remove every device, route, entry and chain the agent owns, and exit")
	return cmd
}

// runAgent keeps the kernel matching the file until SIGINT or SIGTERM.
func runAgent(parent context.Context, k *nodeagent.LinuxKernel, file string, resync time.Duration) error {
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	changes, err := nodeagent.Subscribe(ctx)
	if err != nil {
		return &exitError{exitError2, err}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	log.Info("agent running", "nodeConfig", file, "resync", resync)
	nodeagent.Run(ctx, k, func() (*v1alpha1.NodeConfigSpec, error) {
		nc, err := nodeagent.LoadNodeConfigFile(file)
		if err != nil {
			return nil, err
		}
		return &nc.Spec, nil
	}, nodeagent.Options{Resync: resync, Changes: changes, Log: log})
	return nil
}
