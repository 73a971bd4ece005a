package networld

import (
	"fmt"
	"net/netip"
)

// UnderlayDevice is a node's link to the underlay, in its namespace.
const UnderlayDevice = "eth0"

// SetUnderlay takes a node's underlay link down or brings it back up, in
// the node's namespace, as `ip netns exec <ns> ip link set eth0 down|up`
// does: a NIC or cable that fails. The kernel drops what it kept on the
// link while it was down (IPv6 addresses, routes through it); on the way up
// they are put back as a node's network service and its CNI would: the
// underlay addresses and the routes to the pod ranges of the other nodes of
// its cluster. Nothing Kosmos made is touched: its agent repairs its own.
func (w *World) SetUnderlay(cluster, node string, up bool) error {
	i := w.nodeIndex(cluster, node)
	if i < 0 {
		return fmt.Errorf("no node %s/%s in this world", cluster, node)
	}
	ns := w.NodeNS(cluster, node)
	if !up {
		_, err := Run("ip", "-n", ns, "link", "set", UnderlayDevice, "down")
		return err
	}
	if _, err := Run("ip", "-n", ns, "link", "set", UnderlayDevice, "up"); err != nil {
		return err
	}
	for _, u := range w.Nodes[i].Underlay {
		if _, err := Run("ip", "-n", ns, "addr", "replace", u.String(), "dev", UnderlayDevice, "nodad"); err != nil {
			return err
		}
	}
	for _, r := range clusterRoutes(w.Nodes, i) {
		if _, err := Run("ip", "-n", ns, "route", "replace", r.dst.String(), "via", r.via.String()); err != nil {
			return err
		}
	}
	return nil
}

func (w *World) nodeIndex(cluster, node string) int {
	for i, n := range w.Nodes {
		if n.Cluster == cluster && n.Name == node {
			return i
		}
	}
	return -1
}

// clusterRoute is a route of a node to another node's pod range.
type clusterRoute struct {
	dst netip.Prefix
	via netip.Addr
}

// clusterRoutes are node i's routes to the pod ranges of the other nodes of
// its cluster over the underlay (what routeCluster adds at Build).
func clusterRoutes(nodes []NodeSpec, i int) []clusterRoute {
	var out []clusterRoute
	for j, o := range nodes {
		if o.Cluster != nodes[i].Cluster || j == i {
			continue
		}
		for _, c := range o.PodCIDRs {
			for _, u := range o.Underlay {
				if u.Addr().Is4() == c.Addr().Is4() {
					out = append(out, clusterRoute{dst: c, via: u.Addr()})
				}
			}
		}
	}
	return out
}
