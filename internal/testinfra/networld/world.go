// Package networld builds a world of simulated clusters in network namespaces
// on this machine, for the ClusterLink tests and the local sandbox.
//
// Every node is a network namespace with an eth0 on one shared underlay
// bridge (itself in a namespace). Every pod is a namespace behind a veth on
// its node, addressed from the node's pod CIDR. Inside a cluster, nodes reach
// each other's pods through routes over the underlay, standing in for the
// CNI. Across clusters there is nothing until the Kosmos agent, run in each
// node namespace, builds the tunnels. Everything is real: kernel devices,
// routes, VXLAN and iptables; packets really cross.
//
// Building a world needs root, iproute2 and iptables (make test installs
// them). All namespaces carry a prefix so Destroy removes exactly them.
package networld

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// NodeSpec describes one simulated node.
type NodeSpec struct {
	Cluster  string
	Name     string
	Underlay []netip.Prefix // eth0 addresses (one per family)
	PodCIDRs []netip.Prefix // the node's pod ranges; one pod gets the first usable address of each
}

// World is a built set of namespaces.
type World struct {
	Prefix string
	Nodes  []NodeSpec
	made   []string
}

// NodeNS is the namespace name of a node.
func (w *World) NodeNS(cluster, node string) string { return w.Prefix + cluster + "-" + node }

// PodNS is the namespace name of the pod on a node.
func (w *World) PodNS(cluster, node string) string { return w.NodeNS(cluster, node) + "-pod" }

func (w *World) underlayNS() string { return w.Prefix + "underlay" }

// PodIP is the address of a node's pod in the given range: the second usable
// address (the first is the node side of the pod's veth).
func PodIP(cidr netip.Prefix) netip.Addr { return cidr.Addr().Next().Next() }

func gatewayIP(cidr netip.Prefix) netip.Addr { return cidr.Addr().Next() }

// Run executes a command and returns its combined output.
func Run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// InNS runs a command inside a namespace.
func InNS(ns string, args ...string) (string, error) {
	return Run("ip", append([]string{"netns", "exec", ns}, args...)...)
}

func (w *World) addNS(ns string) error {
	if _, err := Run("ip", "netns", "add", ns); err != nil {
		return err
	}
	w.made = append(w.made, ns)
	_, err := Run("ip", "-n", ns, "link", "set", "lo", "up")
	return err
}

// Build creates the world of the packet tests. On error, what was made is
// destroyed.
//
// KOSMOS_NETWORLD_PREFIX, when set, is put before prefix: test runs that
// share the machine then keep to namespaces of their own.
func Build(prefix string, nodes []NodeSpec) (*World, error) {
	return BuildNamed(os.Getenv("KOSMOS_NETWORLD_PREFIX")+prefix, nodes)
}

// BuildNamed creates the world with exactly the namespace prefix given (the
// sandbox, whose callers name and destroy its namespaces by that prefix).
// On error, what was made is destroyed.
func BuildNamed(prefix string, nodes []NodeSpec) (w *World, err error) {
	w = &World{Prefix: prefix, Nodes: nodes}
	defer func() {
		if err != nil {
			w.Destroy()
		}
	}()
	Destroy(prefix) // leftovers of an interrupted run
	if err := w.addNS(w.underlayNS()); err != nil {
		return nil, err
	}
	if _, err := Run("ip", "-n", w.underlayNS(), "link", "add", "br0", "type", "bridge"); err != nil {
		return nil, err
	}
	if _, err := Run("ip", "-n", w.underlayNS(), "link", "set", "br0", "up"); err != nil {
		return nil, err
	}
	for i, n := range nodes {
		if err := w.buildNode(i, n); err != nil {
			return nil, fmt.Errorf("node %s/%s: %w", n.Cluster, n.Name, err)
		}
	}
	for _, n := range nodes {
		if err := w.routeCluster(n); err != nil {
			return nil, fmt.Errorf("node %s/%s: %w", n.Cluster, n.Name, err)
		}
	}
	return w, nil
}

func (w *World) buildNode(i int, n NodeSpec) error {
	ns, pod := w.NodeNS(n.Cluster, n.Name), w.PodNS(n.Cluster, n.Name)
	if err := w.addNS(ns); err != nil {
		return err
	}
	peer := fmt.Sprintf("u%d", i)
	steps := [][]string{
		{"ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", peer, "netns", w.underlayNS()},
		{"ip", "-n", w.underlayNS(), "link", "set", peer, "master", "br0", "up"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
		{"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"},
	}
	for _, u := range n.Underlay {
		steps = append(steps, []string{"ip", "-n", ns, "addr", "add", u.String(), "dev", "eth0", "nodad"})
	}
	for _, s := range steps {
		if _, err := Run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	if err := w.addNS(pod); err != nil {
		return err
	}
	steps = [][]string{
		{"ip", "link", "add", "veth-pod", "netns", ns, "type", "veth", "peer", "name", "eth0", "netns", pod},
		{"ip", "-n", ns, "link", "set", "veth-pod", "up"},
		{"ip", "-n", pod, "link", "set", "eth0", "up"},
		{"ip", "netns", "exec", pod, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.eth0.accept_dad=0"},
	}
	routed := map[bool]bool{} // a default route per family: the first range's
	for _, c := range n.PodCIDRs {
		v6 := []string{}
		if c.Addr().Is6() {
			v6 = []string{"-6"}
		}
		steps = append(steps,
			[]string{"ip", "-n", ns, "addr", "add", netip.PrefixFrom(gatewayIP(c), c.Bits()).String(), "dev", "veth-pod", "nodad"},
			[]string{"ip", "-n", pod, "addr", "add", netip.PrefixFrom(PodIP(c), c.Bits()).String(), "dev", "eth0", "nodad"},
		)
		if !routed[c.Addr().Is6()] {
			routed[c.Addr().Is6()] = true
			steps = append(steps, append(append([]string{"ip"}, v6...), "-n", pod, "route", "add", "default", "via", gatewayIP(c).String()))
		}
	}
	for _, s := range steps {
		if _, err := Run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// routeCluster gives a node routes to the pod ranges of the other nodes of
// its cluster over the underlay: the part a CNI plays.
func (w *World) routeCluster(n NodeSpec) error {
	ns := w.NodeNS(n.Cluster, n.Name)
	for _, r := range clusterRoutes(w.Nodes, w.nodeIndex(n.Cluster, n.Name)) {
		if _, err := Run("ip", "-n", ns, "route", "add", r.dst.String(), "via", r.via.String()); err != nil {
			return err
		}
	}
	return nil
}

// Destroy removes the world's namespaces.
func (w *World) Destroy() {
	for i := len(w.made) - 1; i >= 0; i-- {
		_, _ = Run("ip", "netns", "del", w.made[i])
	}
	w.made = nil
}

// Destroy removes every namespace whose name starts with prefix.
func Destroy(prefix string) {
	out, _ := Run("ip", "netns", "list")
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			_, _ = Run("ip", "netns", "del", f[0])
		}
	}
}
