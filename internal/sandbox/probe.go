package sandbox

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netns"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/internal/probe"
	"kosmos.io/kosmos/internal/testinfra/networld"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// NetnsRunner is the probe.Runner of the sandbox's data plane: the echo
// servers and clients of package probe, run in this process inside the
// network namespaces of the first machine of every cluster: its pod
// namespace is the cluster's pod network, its node namespace the host
// network.
type NetnsRunner struct {
	// Prefix starts the data plane's namespace names.
	Prefix string
	// Topology and Nodes are the world (DataplaneNodes).
	Topology *v1alpha1.KosmosTopology
	Nodes    map[string][]networld.NodeSpec
	// Port of the echo servers (default probe.DefaultPort).
	Port int
	// Clusters are API clients by cluster name (admin): with them the
	// runner also probes exported services (probesvc.go).
	Clusters map[string]client.Client

	servers  []*probe.Server
	exporter *probe.Exporter
	nats     []*natInstall
}

func (r *NetnsRunner) port() int {
	if r.Port == 0 {
		return probe.DefaultPort
	}
	return r.Port
}

func (r *NetnsRunner) ns(e probe.Endpoint) string {
	w := &networld.World{Prefix: r.Prefix}
	if e.Net == probe.HostNet {
		return w.NodeNS(e.Cluster, e.Name)
	}
	return w.PodNS(e.Cluster, e.Name)
}

// Start opens an echo server in the pod namespace of every cluster's first
// machine and returns its pod and node endpoints.
func (r *NetnsRunner) Start(ctx context.Context) ([]probe.Endpoint, error) {
	var eps []probe.Endpoint
	var errs []error
	for _, c := range r.Topology.Spec.Clusters {
		if len(r.Nodes[c.Name]) == 0 {
			continue
		}
		n := r.Nodes[c.Name][0]
		pod := probe.Endpoint{Cluster: c.Name, Net: probe.PodNet, Name: n.Name}
		for _, cidr := range n.PodCIDRs {
			pod.Addrs = append(pod.Addrs, networld.PodIP(cidr))
		}
		host := probe.Endpoint{Cluster: c.Name, Net: probe.HostNet, Name: n.Name}
		for _, u := range n.Underlay {
			host.Addrs = append(host.Addrs, u.Addr())
		}
		var s *probe.Server
		err := InNetns(r.ns(pod), func() (err error) {
			s, err = probe.Listen(r.port())
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", c.Name, err))
			continue
		}
		s.Serve()
		r.servers = append(r.servers, s)
		eps = append(eps, pod, host)
	}
	return eps, errors.Join(errs...)
}

// Probe sends every probe from its endpoint's namespace, all at once.
func (r *NetnsRunner) Probe(ctx context.Context, probes []probe.Probe, perProbe time.Duration) []probe.Result {
	return probe.SendAll(ctx, probes, perProbe, func(ctx context.Context, p probe.Probe) error {
		return InNetns(r.ns(p.From), func() error { return probe.Send(ctx, p.Proto, p.Addr, r.port()) })
	})
}

// Close stops the echo servers and removes the probe services.
func (r *NetnsRunner) Close(ctx context.Context) error {
	errs := []error{r.closeServices(ctx)}
	for _, s := range r.servers {
		errs = append(errs, s.Close())
	}
	r.servers = nil
	return errors.Join(errs...)
}

// InNetns runs fn on a thread inside the named network namespace: the
// sockets fn opens belong to it (and keep belonging to it afterwards).
func InNetns(name string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("network namespace of this thread: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread stays locked and ends with its goroutine, never reused
		// in the wrong namespace.
		return errors.Join(ferr, fmt.Errorf("leave network namespace %s: %w", name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// ProbeChecks is the probe table of the sandbox's data plane (kosmos check
// in a sandbox with --dataplane, the chaos suite): package probe's pairs
// and verdicts over the NetnsRunner.
func ProbeChecks(ctx context.Context, prefix string, t *v1alpha1.KosmosTopology, nodes map[string][]networld.NodeSpec, o probe.Options) ([]check.Check, error) {
	return probe.Run(ctx, t, &NetnsRunner{Prefix: prefix, Topology: t, Nodes: nodes}, o)
}

// StopAgent stops the node agent of one machine (its kernel state stays,
// as after a crash), for tests that break the data plane.
func (s *Sandbox) StopAgent(cluster, node string) error {
	for _, cmd := range s.procs {
		if cmd.Process == nil || len(cmd.Args) < 4 || cmd.Args[1] != "agent" {
			continue
		}
		i := slices.Index(cmd.Args, "--node")
		if i < 0 || i+1 >= len(cmd.Args) || cmd.Args[i+1] != node || !slices.ContainsFunc(cmd.Args, func(a string) bool { return strings.Contains(a, "/"+cluster+"/") }) {
			continue
		}
		if err := cmd.Process.Kill(); err != nil {
			return fmt.Errorf("stop the agent of %s/%s: %w", cluster, node, err)
		}
		return nil
	}
	return fmt.Errorf("no agent of %s/%s in this sandbox", cluster, node)
}
