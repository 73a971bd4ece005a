package sandbox

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"k8s.io/klog/v2"

	"kosmos.io/kosmos/reconciler"
)

// FirstApply shows the first `kosmos diff` of the sandbox (what Kosmos will
// create, one line per object) and applies it once, printing what happened.
func (s *Sandbox) FirstApply(ctx context.Context, out io.Writer) error {
	clusters, err := reconciler.ConnectContexts(s.Topology, s.KubeconfigPath)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\nfirst kosmos diff (what Kosmos will create):")
	diffs, err := reconciler.LiveDiff(ctx, s.Topology, clusters, reconciler.PassOptions{Prune: true})
	if err != nil {
		return err
	}
	for _, d := range diffs.Clusters {
		changes := reconciler.Diff(d.Cluster, d.Before, d.After)
		fmt.Fprintf(out, "  cluster %s: %d changes\n", d.Cluster, len(changes))
		for _, c := range changes {
			fmt.Fprintf(out, "    %-6s %s\n", c.Action, c.Key)
		}
	}
	fmt.Fprintf(out, "  (the whole diff: kosmos diff -f %s --kubeconfig %s)\n\napplying:\n", s.o.Topology, s.KubeconfigPath)
	rep := reconciler.Pass(ctx, s.Topology, clusters, reconciler.PassOptions{Prune: true})
	rep.Write(out, false)
	if err := rep.Err(); err != nil {
		return fmt.Errorf("the first apply failed: %w", err)
	}
	return nil
}

// RedirectLogs sends the components' own logs (kube-scheduler, CoreDNS,
// client-go, and whatever writes to stderr) to dir/components.log, so the
// sandbox's output stays its story. close ends the file.
func RedirectLogs(dir string) (path string, close func() error, err error) {
	f, err := os.Create(filepath.Join(dir, "components.log"))
	if err != nil {
		return "", nil, err
	}
	klog.LogToStderr(false)
	klog.SetOutput(f)
	log.SetOutput(f)
	os.Stderr = f // components that set their own logging write to stderr (main kept the real one for errors)
	return f.Name(), f.Close, nil
}
