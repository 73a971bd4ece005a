package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the kosmos version and the versions it is built with",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "kosmos %s (%s, %s/%s", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, d := range bi.Deps {
					if d.Path == "k8s.io/client-go" {
						fmt.Fprintf(cmd.OutOrStdout(), ", client-go %s", d.Version)
					}
				}
			}
			fmt.Fprintln(cmd.OutOrStdout(), ")")
		},
	}
}
