package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"kosmos.io/kosmos/reconciler"
	"kosmos.io/kosmos/reconciler/inventory"
	"kosmos.io/kosmos/reconciler/preview"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// diffHelp is the long help of the command.
const diffHelp = `Diff shows, for every cluster, the objects applying the topology would
create, change and delete, as a unified diff of YAML (in colour on a
terminal), with a summary line per cluster. It uses the plan apply uses:
NodeConfigs, Cluster and DistributionPolicy objects, the kosmos-dns
ConfigMap, ServiceExports, ServiceImports and EndpointSlices.

Live (the default): the clusters are reached through the contexts the
topology names; what they would hold is normalised by a server-side apply dry
run, so server defaults do not show as changes; server-managed fields are
hidden and Secret values redacted. Deletions are what apply's prune would
delete: what the inventory records and the plan no longer holds, and
everything in clusters that left the topology. When the deletions would trip
apply's deletion guard, diff says so and prints the token that confirms them.
Nothing is written.

Offline (--offline), for pull requests without cluster credentials: the
plans of --from (the old topology) and -f (the new one) are compared over
facts captured by 'kosmos facts'.

KUBECTL_EXTERNAL_DIFF, when set, is run on two directories (before, after)
instead. Exit status as kubectl diff: 0 no changes, 1 changes, 2 error.

-o markdown prints, instead of the YAML diff, what a pull request comment
carries: a table of the objects created, changed and deleted per cluster
and kind; the notable changes in words (clusters joining or leaving, mode
and GlobalCIDR changes, gateway moves, routes added and removed per cluster
pair, distribution policies, the objects prune deletes, the deletion
guard's verdict); and a Mermaid diagram of the new topology (clusters,
modes, tunnels, GlobalCIDR maps), which GitHub and GitLab render. The exit
status is the same; KUBECTL_EXTERNAL_DIFF is not run. Live, the old
topology is not known: joining clusters and mode or GlobalCIDR changes are
then not named. 'kosmos graph' draws the topology alone.`

// diffFlags are the flags of kosmos diff.
type diffFlags struct {
	file, from, factsFile, kubeconfig, confirm, output string
	offline                                            bool
	guardPercent                                       int
}

func newDiffCommand() *cobra.Command {
	var f diffFlags
	cmd := &cobra.Command{
		Use:   "diff -f FILE",
		Short: "Show what applying the topology would change, cluster by cluster",
		Long:  diffHelp,
		Example: `  kosmos diff -f topology.yaml
  kosmos diff -f topology.yaml -o markdown
  kosmos diff --offline --facts facts.yaml --from main/topology.yaml -f topology.yaml
  kosmos diff --offline --facts facts.yaml --from main/topology.yaml -f topology.yaml -o markdown > comment.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDiff(cmd, f) },
	}
	cmd.Flags().StringVarP(&f.file, "file", "f", "", "topology file (the new one, with --offline)")
	cmd.Flags().BoolVar(&f.offline, "offline", false, "compare two topologies over captured facts; no cluster access")
	cmd.Flags().StringVar(&f.from, "from", "", "the old topology, with --offline")
	cmd.Flags().StringVar(&f.factsFile, "facts", "", "facts file from 'kosmos facts', with --offline")
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig holding the topology's contexts")
	cmd.Flags().IntVar(&f.guardPercent, "guard-percent", inventory.DefaultGuardPercent, "the deletion guard's threshold, as apply's")
	cmd.Flags().StringVar(&f.confirm, "confirm-deletions", "", "a guard token, as apply's (the preview then shows the guard confirmed)")
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "text (unified YAML diff) or markdown (summary, notable changes, Mermaid diagram: a pull request comment)")
	return cmd
}

// runDiff computes the preview (offline or live), prints it as text or
// Markdown and maps the outcome to kubectl diff's exit codes.
func runDiff(cmd *cobra.Command, f diffFlags) error {
	if f.output != "text" && f.output != "markdown" {
		return &exitError{exitError2, fmt.Errorf("-o %q: want text or markdown", f.output)}
	}
	t, err := loadTopology(f.file)
	if err != nil {
		return asDiffError(err)
	}
	var rep reconciler.DiffReport
	var old *v1alpha1.KosmosTopology
	if f.offline {
		old, rep, err = offlineDiff(t, f.from, f.factsFile, f.guardPercent)
	} else {
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		rep, err = liveDiff(ctx, t, f.kubeconfig, reconciler.PassOptions{Prune: true, GuardPercent: f.guardPercent, ConfirmDeletions: f.confirm})
	}
	if err != nil {
		return asDiffError(err)
	}
	var changed bool
	if f.output == "markdown" {
		fmt.Fprint(cmd.OutOrStdout(), preview.Markdown(preview.Input{Old: old, New: t, Report: rep, Offline: f.offline}))
		changed = len(rep.Changes()) > 0
	} else if changed, err = printDiffs(cmd.OutOrStdout(), rep, f.offline); err != nil {
		return &exitError{exitError2, err}
	}
	if changed {
		return &exitError{exitInvalid, errors.New("")}
	}
	return nil
}

// asDiffError maps errors to kubectl diff's codes: anything failing is > 1.
func asDiffError(err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return &exitError{exitError2, ee.err}
	}
	return &exitError{exitError2, err}
}

// offlineDiff compares the plans of the topology in from (returned too)
// and t over the facts in factsFile.
func offlineDiff(t *v1alpha1.KosmosTopology, from, factsFile string, guardPercent int) (*v1alpha1.KosmosTopology, reconciler.DiffReport, error) {
	if from == "" || factsFile == "" {
		return nil, reconciler.DiffReport{}, errors.New("--offline needs --from OLD and --facts FILE")
	}
	old, err := loadTopology(from)
	if err != nil {
		return nil, reconciler.DiffReport{}, err
	}
	facts, err := readFacts(factsFile)
	if err != nil {
		return nil, reconciler.DiffReport{}, err
	}
	rep, err := reconciler.OfflineDiff(old, t, facts, time.Now(), guardPercent)
	return old, rep, err
}

func liveDiff(ctx context.Context, t *v1alpha1.KosmosTopology, kubeconfig string, opts reconciler.PassOptions) (reconciler.DiffReport, error) {
	clusters, err := reconciler.ConnectContexts(t, kubeconfig)
	if err != nil {
		return reconciler.DiffReport{}, err
	}
	opts.Connect = func(t *v1alpha1.KosmosTopology) ([]reconciler.Cluster, error) {
		return reconciler.ConnectContexts(t, kubeconfig)
	}
	return reconciler.LiveDiff(ctx, t, clusters, opts)
}

// printGuard says what the deletion guard makes of the preview.
func printGuard(w io.Writer, g inventory.Guard, offline bool) {
	switch {
	case g.Tripped && offline:
		fmt.Fprintf(w, "deletion guard: this change deletes %d of the %d objects Kosmos owns (more than %d%%); apply will write nothing until it is confirmed (kosmos apply prints the token)\n", g.Deletions, g.Total, g.Percent)
	case g.Tripped:
		fmt.Fprintln(w, g.Message())
	}
}

// printDiffs prints the summary and diffs (or runs KUBECTL_EXTERNAL_DIFF) and
// reports whether anything would change.
func printDiffs(w io.Writer, rep reconciler.DiffReport, offline bool) (bool, error) {
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	printGuard(w, rep.Guard, offline)
	colour := false
	if f, ok := w.(*os.File); ok && os.Getenv("NO_COLOR") == "" {
		colour = term.IsTerminal(int(f.Fd()))
	}
	var ext *externalDiff
	if cmdline := os.Getenv("KUBECTL_EXTERNAL_DIFF"); cmdline != "" {
		tmp, err := os.MkdirTemp("", "kosmos-diff-")
		if err != nil {
			return false, err
		}
		defer os.RemoveAll(tmp)
		ext = &externalDiff{cmdline: cmdline, before: filepath.Join(tmp, "before"), after: filepath.Join(tmp, "after")}
	}
	changed := false
	for _, d := range rep.Clusters {
		changes := reconciler.Diff(d.Cluster, d.Before, d.After)
		counts := map[string]int{}
		for _, c := range changes {
			counts[c.Action]++
		}
		leaving := ""
		if d.Leaving {
			leaving = " (left the topology: everything Kosmos wrote there goes, then it is forgotten)"
		}
		fmt.Fprintf(w, "cluster %s: %d to create, %d to change, %d to delete%s\n", d.Cluster, counts["create"], counts["update"], counts["delete"], leaving)
		for _, c := range changes {
			changed = true
			if ext == nil {
				fmt.Fprint(w, reconciler.Unified(c, colour))
			} else if err := ext.add(c); err != nil {
				return false, err
			}
		}
	}
	if ext != nil && changed {
		return changed, ext.run(w)
	}
	return changed, nil
}

// externalDiff writes each change's two sides into two directories and runs
// KUBECTL_EXTERNAL_DIFF on them, as kubectl diff does.
type externalDiff struct{ cmdline, before, after string }

func (e *externalDiff) add(c reconciler.Change) error {
	name := c.Cluster + "_" + strings.ReplaceAll(c.Key, "/", "_") + ".yaml"
	for dir, text := range map[string]string{e.before: c.Old, e.after: c.New} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (e *externalDiff) run(w io.Writer) error {
	args := strings.Fields(e.cmdline)
	cmd := exec.Command(args[0], append(args[1:], e.before, e.after)...)
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() > 1 { // diff tools exit 1 on differences
			return fmt.Errorf("KUBECTL_EXTERNAL_DIFF: %w", err)
		}
	}
	return nil
}
