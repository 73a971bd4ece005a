package sandbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"kosmos.io/kosmos/internal/check"
	"kosmos.io/kosmos/internal/globalip"
	"kosmos.io/kosmos/internal/probe"
	"kosmos.io/kosmos/internal/testinfra/networld"
	"kosmos.io/kosmos/schema/v1alpha1"
)

// NetnsPrefix starts the names of the data plane's network namespaces
// (one sandbox with a data plane at a time).
const NetnsPrefix = "ksb-"

// worldNodes lists the simulated machines as namespaces of the packet
// world: their underlay addresses on one segment (/16), their pod ranges.
func (s *Sandbox) worldNodes() []networld.NodeSpec {
	var out []networld.NodeSpec
	for _, c := range s.Topology.Spec.Clusters {
		for _, n := range s.Nodes[c.Name] {
			spec := networld.NodeSpec{Cluster: c.Name, Name: n.Name}
			for _, a := range n.Status.Addresses {
				if ip, err := netip.ParseAddr(a.Address); err == nil {
					spec.Underlay = append(spec.Underlay, netip.PrefixFrom(ip, 16))
				}
			}
			for _, p := range n.Spec.PodCIDRs {
				if pr, err := netip.ParsePrefix(p); err == nil {
					spec.PodCIDRs = append(spec.PodCIDRs, pr)
				}
			}
			out = append(out, spec)
		}
	}
	return out
}

// buildDataplane makes every simulated machine a network namespace with a
// pod namespace behind it (root only), leftovers of an earlier sandbox
// removed first.
func (s *Sandbox) buildDataplane() error {
	if os.Geteuid() != 0 {
		return errors.New("--dataplane needs root: it builds network namespaces, VXLAN devices and iptables chains")
	}
	if err := dataplaneTools(); err != nil {
		return err
	}
	prefix := cmp.Or(s.o.NetnsPrefix, NetnsPrefix)
	networld.Destroy(prefix)
	w, err := networld.BuildNamed(prefix, s.worldNodes())
	if err != nil {
		return fmt.Errorf("data plane: %w", err)
	}
	s.world = w
	s.say("  data plane: %d machines as network namespaces (%s*), a pod in each", len(w.Nodes), prefix)
	return nil
}

// dataplaneTools checks that the programs the data plane and its agents run
// are installed, naming the missing ones and how to get them.
func dataplaneTools() error {
	var missing []string
	for _, p := range []string{"ip", "iptables", "ip6tables", "ping"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("--dataplane needs %s: install them (make deps, or apt-get install iproute2 iptables iputils-ping)", strings.Join(missing, ", "))
	}
	return nil
}

// startAgents runs `kosmos agent` for every machine, in its namespace,
// following its NodeConfig in its cluster's API server.
func (s *Sandbox) startAgents() error {
	bin := s.o.AgentCommand
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return err
		}
	}
	for _, n := range s.world.Nodes {
		logf, err := os.Create(filepath.Join(s.o.Dir, n.Cluster, "agent-"+n.Name+".log"))
		if err != nil {
			return err
		}
		cmd := exec.Command(bin, "agent", "--node", n.Name, "--kubeconfig", filepath.Join(s.o.Dir, n.Cluster, "kubeconfig"),
			"--netns", s.world.NodeNS(n.Cluster, n.Name), "--health-addr", "",
			"--state-dir", filepath.Join(s.o.Dir, n.Cluster, "agent-state-"+n.Name))
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("agent of %s/%s: %w", n.Cluster, n.Name, err)
		}
		s.procs = append(s.procs, cmd)
		s.wg.Go(func() {
			err := cmd.Wait()
			logf.Close()
			if s.ctx.Err() == nil { // an agent that dies while the sandbox runs is news
				s.say("  node agent of %s/%s exited (%v); its log: %s", n.Cluster, n.Name, err, logf.Name())
			}
		})
	}
	s.say("  %d node agents (kosmos agent --netns)", len(s.world.Nodes))
	return nil
}

// PingPair is a pod of one cluster and the address by which it reaches a
// pod of another.
type PingPair struct {
	// Name says who pings whom: "pod A/a1 → B/b1 (addr)".
	Name string
	// FromNS is the sending pod's network namespace; To the address.
	FromNS string
	To     netip.Addr
}

// PingPairs lists, for every ordered pair of clusters, the pod on the first
// machine of one and the pod on the first machine of the other, at the
// address the sender reaches it by (global where the receiver's pod range
// is mapped); IPv4, and IPv6 where both have it.
// prefix starts the data plane's namespace names (NetnsPrefix for the one
// of `kosmos up`).
func PingPairs(prefix string, t *v1alpha1.KosmosTopology, nodes map[string][]networld.NodeSpec) []PingPair {
	var out []PingPair
	w := &networld.World{Prefix: prefix}
	for _, from := range t.Spec.Clusters {
		for _, to := range t.Spec.Clusters {
			if len(nodes[from.Name]) == 0 || len(nodes[to.Name]) == 0 || from.Name == to.Name {
				continue
			}
			src, dst := nodes[from.Name][0], nodes[to.Name][0]
			gm, _ := globalip.Parse(to.Network.GlobalCIDRs)
			for _, cidr := range dst.PodCIDRs {
				if !hasFamily(src.PodCIDRs, cidr.Addr().Is4()) {
					continue
				}
				addr := gm.ToGlobal(networld.PodIP(cidr))
				out = append(out, PingPair{
					Name:   fmt.Sprintf("pod %s/%s → %s/%s (%s)", from.Name, src.Name, to.Name, dst.Name, addr),
					FromNS: w.PodNS(src.Cluster, src.Name), To: addr,
				})
			}
		}
	}
	return out
}

// PingChecks is the data plane's probe table (ProbeChecks: ICMP, TCP and
// UDP echo from every cluster's pod and host network to every other's pod),
// a failure to run it as a FAIL row.
func PingChecks(prefix string, t *v1alpha1.KosmosTopology, nodes map[string][]networld.NodeSpec) []check.Check {
	checks, err := ProbeChecks(context.Background(), prefix, t, nodes, probe.Options{Timeout: time.Minute})
	if err != nil {
		checks = append(checks, check.Check{Name: "probe", Result: "FAIL", Detail: err.Error()})
	}
	return checks
}

func hasFamily(ps []netip.Prefix, v4 bool) bool {
	for _, p := range ps {
		if p.Addr().Is4() == v4 {
			return true
		}
	}
	return false
}

// DataplaneNodes is the world of topology t as a sandbox builds it, by
// cluster (for PingChecks from another process).
func DataplaneNodes(t *v1alpha1.KosmosTopology, perCluster int) (map[string][]networld.NodeSpec, error) {
	nodes, err := NodesFor(t, perCluster)
	if err != nil {
		return nil, err
	}
	s := &Sandbox{Topology: t, Nodes: nodes}
	out := map[string][]networld.NodeSpec{}
	for _, n := range s.worldNodes() {
		out[n.Cluster] = append(out[n.Cluster], n)
	}
	return out, nil
}

// DestroyDataplane removes the data plane's namespaces (down, after a
// crash).
func DestroyDataplane() { networld.Destroy(NetnsPrefix) }
