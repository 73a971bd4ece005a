package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/internal/sandbox"
	"kosmos.io/kosmos/schema"
	"kosmos.io/kosmos/schema/v1alpha1"
)

func defaultSandboxDir() string {
	if d := os.Getenv("KOSMOS_SANDBOX_DIR"); d != "" {
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "kosmos", "sandbox")
}

// upHelp is the long help of the command.
const upHelp = `Up runs the topology on this machine, with no Docker: for every cluster a real
control plane (etcd, kube-apiserver, kube-controller-manager from bin/k8s; make
demo builds them), Node objects standing for its machines and a simulated
kubelet that runs the pods bound to them. It prints the first kosmos diff,
applies, then runs the reconciler, the tree controller, the kube-scheduler
with the Kosmos plugins and the DNS server (kosmos dns) against the clusters,
and ends with a status table and what to try next.

With --dataplane (root), every machine is also a network namespace with a pod
behind it, on one shared underlay, and the real node agent runs in each: the
VXLAN devices, routes and NAT of ClusterLink are built, and kosmos check pings
pod to pod across clusters, and kubectl exec on a pod of a virtual node runs
the command in its machine's pod namespace (without it, exec says so).

kubectl logs and exec reach pods on virtual nodes: the API servers get a
kubelet client certificate, the tree serves its virtual nodes' kubelet
endpoint, and the simulated kubelets answer logs and exec.

The sandbox keeps running in the background (its log: <state-dir>/up.log)
until kosmos down. The kubeconfig at <state-dir>/kubeconfig has a context
per cluster.`

func newUpCommand() *cobra.Command {
	var file, dir, schedConf string
	var nodes, dnsPort int
	var foreground, dataplane bool
	cmd := &cobra.Command{
		Use:   "up -f TOPOLOGY",
		Short: "Start the local sandbox: a real control plane per cluster of the topology, Kosmos running against them",
		Long:  upHelp,
		Example: `  kosmos up -f topology.example.yaml
  sudo kosmos up -f topology.example.yaml --dataplane
  export KUBECONFIG=~/.cache/kosmos/sandbox/kubeconfig
  kubectl --context host get nodes
  kosmos check -f topology.example.yaml
  kosmos down`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return &exitError{exitError2, errors.New("up needs -f TOPOLOGY (try topology.example.yaml)")}
			}
			abs, err := filepath.Abs(file)
			if err != nil {
				return &exitError{exitError2, err}
			}
			if _, err := schema.LoadFile(abs); err != nil { // refused before anything starts
				return &exitError{exitInvalid, err}
			}
			if st, err := sandbox.ReadState(dir); err == nil && st.PID != 0 && st.PID != os.Getpid() {
				return &exitError{exitError2, fmt.Errorf("a sandbox is already running (pid %d, %s): kosmos down first", st.PID, dir)}
			}
			if dataplane && os.Geteuid() != 0 {
				return &exitError{exitError2, errors.New("--dataplane needs root: it builds network namespaces, VXLAN devices and iptables chains")}
			}
			opts := sandbox.Options{Topology: abs, Dir: dir, NodesPerCluster: nodes, SchedulerConfig: schedConf, DNSPort: dnsPort, Dataplane: dataplane}
			if foreground {
				return runSandbox(cmd.OutOrStdout(), opts)
			}
			return detachSandbox(cmd.OutOrStdout(), dir, []string{"up", "--foreground", "-f", abs, "--state-dir", dir,
				"--scheduler-config", schedConf, "--nodes", strconv.Itoa(nodes), "--dns-port", strconv.Itoa(dnsPort),
				"--dataplane=" + strconv.FormatBool(dataplane)})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&file, "file", "f", "", "topology file")
	fl.StringVar(&dir, "state-dir", defaultSandboxDir(), "where the sandbox keeps its state (kubeconfig, logs)")
	fl.StringVar(&schedConf, "scheduler-config", "", "a KubeSchedulerConfiguration for the host (default: the one shipped in kustomize/base/scheduler)")
	fl.IntVar(&nodes, "nodes", 2, "simulated machines per cluster")
	fl.IntVar(&dnsPort, "dns-port", 10053, "loopback port of the DNS server (0: any free)")
	fl.BoolVar(&dataplane, "dataplane", false, "also build the packet world: a network namespace per machine, the node agent in each (root)")
	fl.BoolVar(&foreground, "foreground", false, "stay in the foreground until interrupted (what the background process runs)")
	return cmd
}

// detachSandbox starts `kosmos up --foreground` in its own session, shows
// its log until it is ready, and leaves it running.
func detachSandbox(out io.Writer, dir string, args []string) error {
	if err := sandbox.ClaimDir(dir); err != nil {
		return &exitError{exitError2, err}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &exitError{exitError2, err}
	}
	self, err := os.Executable()
	if err != nil {
		return &exitError{exitError2, err}
	}
	logPath := filepath.Join(dir, "up.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return &exitError{exitError2, err}
	}
	defer logf.Close()
	child := exec.Command(self, args...)
	child.Env = append(os.Environ(), sandbox.EnvDirClaimed+"=1")
	child.Stdout, child.Stderr = logf, logf
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return &exitError{exitError2, fmt.Errorf("start the sandbox: %w", err)}
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	tail, err := os.Open(logPath)
	if err != nil {
		return &exitError{exitError2, err}
	}
	defer tail.Close()
	deadline := time.After(15 * time.Minute)
	for {
		_, _ = io.Copy(out, tail)
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			_, _ = io.Copy(out, tail)
			return nil
		}
		select {
		case err := <-exited:
			_, _ = io.Copy(out, tail)
			return &exitError{exitError2, fmt.Errorf("the sandbox stopped (%v); its log: %s", err, logPath)}
		case <-deadline:
			return &exitError{exitError2, fmt.Errorf("the sandbox was not ready within 15 minutes; its log: %s (kosmos down stops it)", logPath)}
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runSandbox is the sandbox's own process: up, diff, apply, controllers,
// status; then it waits for SIGTERM or SIGINT and stops everything.
func runSandbox(out io.Writer, o sandbox.Options) error {
	topology, dir := o.Topology, o.Dir
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv(sandbox.EnvDirClaimed) != "1" { // run directly with --foreground, not by detachSandbox
		if err := sandbox.ClaimDir(dir); err != nil {
			return &exitError{exitError2, err}
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &exitError{exitError2, err}
	}
	st := sandbox.State{Topology: topology, Dataplane: o.Dataplane, Nodes: cmp.Or(o.NodesPerCluster, 2)}
	if err := st.Record(os.Getpid()); err != nil {
		return &exitError{exitError2, err}
	}
	if err := sandbox.WriteState(dir, st); err != nil { // kosmos down can stop it while it starts
		return &exitError{exitError2, err}
	}
	logPath, closeLog, err := sandbox.RedirectLogs(dir)
	if err != nil {
		return &exitError{exitError2, err}
	}
	defer closeLog()
	start := time.Now()
	fmt.Fprintf(out, "kosmos up: %s (components log to %s)\n", topology, logPath)
	o.Progress = out
	if o.Log == nil { // the controllers' logs (topology rejections included) join the components'
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	sb, err := sandbox.Start(ctx, o)
	if err != nil {
		return &exitError{exitError2, err}
	}
	defer func() {
		fmt.Fprintln(out, "stopping the sandbox")
		_ = sb.Stop()
	}()
	if err := sb.FirstApply(ctx, out); err != nil {
		return &exitError{exitError2, err}
	}
	fmt.Fprintln(out, "\nstarting the controllers:")
	if err := sb.StartControllers(); err != nil {
		return &exitError{exitError2, err}
	}
	report := sb.WaitReady(ctx, time.Minute)
	fmt.Fprintf(out, "\nsandbox up in %s\n\n", time.Since(start).Round(time.Second))
	report.WriteTable(out)
	printNext(out, sb, topology)
	st.Kubeconfig, st.DNS = sb.KubeconfigPath, sb.DNSAddr
	if err := sandbox.WriteState(dir, st); err != nil {
		return &exitError{exitError2, err}
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600); err != nil {
		return &exitError{exitError2, err}
	}
	<-ctx.Done()
	return nil
}

func printNext(out io.Writer, sb *sandbox.Sandbox, topology string) {
	_, port, _ := net.SplitHostPort(sb.DNSAddr)
	fmt.Fprintf(out, `
next:
  export KUBECONFIG=%s
  kubectl --context host get nodes                 # the members as virtual nodes
  kubectl --context host create namespace shop
  kubectl --context host -n shop create deployment web --image=nginx --replicas=4
  kubectl --context host -n shop patch deployment web -p '{"spec":{"template":{"spec":{"schedulerName":"kosmos-scheduler"}}}}'
  kubectl --context host -n shop get pods -o wide  # spread 2:1:1 by the web-weighted policy
  kubectl --context host -n shop logs deploy/web  # through the virtual node to the member's kubelet
  dig @127.0.0.1 -p %s web.shop.svc.clusterset.local
  kosmos check -f %s
  kosmos down
`, sb.KubeconfigPath, cmp.Or(port, "10053"), topology)
}

func newDownCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the local sandbox and remove its state",
		Long: `Down stops the sandbox whose state is in --state-dir and removes the directory.
It touches only a directory that kosmos up marked (.kosmos-sandbox); it
signals the recorded process only while that process has the start time and
command line recorded (after a crash, its PID may belong to someone else);
an unreadable state.json is refused and nothing is removed.`,
		Example: `  kosmos down
  kosmos down --state-dir /tmp/my-sandbox`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := sandbox.Down(dir, cmd.OutOrStdout()); err != nil {
				return &exitError{exitError2, err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "state-dir", defaultSandboxDir(), "the sandbox's state directory")
	return cmd
}

func newCheckCommand() *cobra.Command {
	var file, dir, kubeconfig, dnsAddr, dnsCluster string
	var pf probeFlags
	cmd := &cobra.Command{
		Use:   "check -f TOPOLOGY",
		Short: "Diagnose an installation: clusters reachable, NodeConfigs in place and applied, gateways, virtual nodes",
		Long: `Check reads every cluster of the topology and prints a pass/fail table:
each cluster answers; every machine has its NodeConfig, and the node agents
applied them (a failure where no agent reported; skipped only in a sandbox
without a data plane); Gateway-mode clusters have a gateway; members with a tree have Ready
virtual nodes in the host; in a sandbox with a data plane, a pod of every
cluster reaches a pod of every other (ICMP, TCP and UDP echo from its pod
and its host network, at global addresses where the cluster is mapped);
with --probe on real clusters, the same probes from short-lived probe pods
(the Kosmos image running "kosmos probe") in --probe-namespace of every
cluster, deleted when the check ends (also on Ctrl-C), the broken pairs
named; with --services (the default) also every cluster's short-lived
probe Service, exported (MCS) and probed at its ClusterSetIP from every
other cluster (TCP and UDP; in the sandbox the check plays kube-proxy's
part from the imports); the cluster DNS answers the clusterset zone (its dns-version record and a ClusterSetIP import's VIP), asked at --dns (the
running sandbox's DNS server by default; skipped when there is none).
Exit status 0 when nothing failed, 1 otherwise.

It reaches the clusters through --kubeconfig, or the running sandbox's.`,
		Example: `  kosmos check -f topology.example.yaml
  kosmos check -f prod.yaml --kubeconfig ~/.kube/fleet
  kosmos check -f prod.yaml --dns 10.0.0.10:53 --dns-cluster member-a
  kosmos check -f prod.yaml --probe --probe-image registry.example/kosmos:v0.9 --timeout 1m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return &exitError{exitError2, errors.New("check needs -f TOPOLOGY")}
			}
			t, err := schema.LoadFile(file)
			if err != nil {
				return &exitError{exitError2, err}
			}
			var st sandbox.State
			if kubeconfig == "" {
				if st, err = sandbox.ReadState(dir); err == nil {
					kubeconfig = st.Kubeconfig
				}
			}
			r, err := check.Collect(cmd.Context(), t, kubeconfig)
			if err != nil {
				return &exitError{exitError2, err}
			}
			// Agents are expected, except in a sandbox without a data plane.
			checks := r.Checks(t, st.PID == 0 || st.Dataplane)
			// Real packets: the sandbox's data plane, or probe pods (--probe).
			probes, err := probeChecks(cmd.Context(), t, st, kubeconfig, pf)
			if err != nil {
				return &exitError{exitError2, err}
			}
			checks = append(checks, probes...)
			checks = append(checks, dnsCheck(cmd.Context(), t, r, cmp.Or(dnsAddr, st.DNS), dnsCluster))
			out := cmd.OutOrStdout()
			r.WriteTable(out)
			fmt.Fprintln(out)
			if !check.WriteChecks(out, checks) {
				return &exitError{exitInvalid, errors.New("some checks failed")}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "topology file")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig with the topology's contexts (default: the running sandbox's, else $KUBECONFIG)")
	cmd.Flags().StringVar(&dir, "state-dir", defaultSandboxDir(), "the sandbox's state directory")
	cmd.Flags().StringVar(&dnsAddr, "dns", "", "HOST:PORT of a cluster's DNS server to ask for the clusterset zone (default: the running sandbox's)")
	cmd.Flags().StringVar(&dnsCluster, "dns-cluster", "", "the cluster whose DNS --dns is (default: the host cluster, as in the sandbox)")
	pf.add(cmd)
	return cmd
}

// dnsCheck is the cluster DNS row of kosmos check: addr asked on behalf of
// the named cluster (the host cluster by default), whose imports say what
// the VIP answer must be.
func dnsCheck(ctx context.Context, t *v1alpha1.KosmosTopology, r check.Report, addr, cluster string) check.Check {
	if cluster == "" {
		cluster = t.Spec.Clusters[0].Name
		for _, c := range t.Spec.Clusters {
			if c.Role == v1alpha1.RoleHost {
				cluster = c.Name
			}
		}
	}
	var imports []check.ImportReport
	for _, c := range r.Clusters {
		if c.Name == cluster {
			imports = c.Imports
		}
	}
	var ask check.Ask
	if addr != "" {
		ask = check.DNSQuery(addr, 3*time.Second)
	}
	return check.DNSCheck(ctx, cluster, t.Spec.DNS.Domain, addr, ask, imports)
}
