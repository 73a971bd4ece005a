// Command kosmos is the one Kosmos binary: it validates and renders topologies
// and runs every component. Each command is a thin call into its package.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"kosmos.io/kosmos/scheduler"
)

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Exit codes shared by the commands.
const (
	exitOK      = 0
	exitInvalid = 1 // the input is invalid (or, for diff, there are changes)
	exitError2  = 2 // usage or I/O error
)

func main() {
	invokedAs = filepath.Base(os.Args[0])
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// invokedAs is the name the binary was started by: kubectl-kosmos when
// kubectl runs it as a plugin ("kubectl kosmos ...").
var invokedAs = "kosmos"

// displayName is the command name help and usage show: "kubectl kosmos"
// under kubectl, "kosmos" otherwise.
func displayName(argv0 string) string {
	if strings.TrimSuffix(argv0, ".exe") == "kubectl-kosmos" {
		return "kubectl kosmos"
	}
	return "kosmos"
}

func init() {
	// kube-scheduler's packages register --version on the global flag set;
	// kosmos has its own version command.
	_ = pflag.CommandLine.MarkHidden("version")
}

// run executes the CLI and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext is run under ctx: long-running commands stop when it ends.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, "kosmos:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "kosmos:", err)
	return exitError2
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "kosmos",
		Short: "Join Kubernetes clusters into one, driven by one topology file",
		Long: `Kosmos joins Kubernetes clusters into one: pods reach pods and services in
other clusters (ClusterLink), members appear as nodes of a host (ClusterTree),
a scheduler spreads replicas by policy, and *.svc.clusterset.local resolves
across clusters. One KosmosTopology file, kept in git, drives all of it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: displayName(invokedAs)},
	}
	root.AddCommand(newValidateCommand(), newSchemaCommand(), newRenderCommand(), newFactsCommand(), newDiffCommand(), newGraphCommand(), newApplyCommand(), newReconcileCommand(), newAgentCommand(), newTreeCommand(), scheduler.Command(), newDNSCommand(), newUpCommand(), newDownCommand(), newCheckCommand(), newProbeCommand(), newVersionCommand())
	return root
}
