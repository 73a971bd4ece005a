package sandbox

import (
	"errors"
	"fmt"

	"kosmos.io/kosmos/internal/testinfra/networld"
)

// UnderlayDevice is a simulated machine's link to the underlay, in its
// network namespace (NodeNS).
const UnderlayDevice = networld.UnderlayDevice

// NodeNS is the network namespace of a simulated machine of the data plane
// (prefix: NetnsPrefix for the one of `kosmos up --dataplane`).
func NodeNS(prefix, cluster, node string) string {
	return (&networld.World{Prefix: prefix}).NodeNS(cluster, node)
}

// SetUnderlay takes a machine's underlay link down, or brings it back up,
// in its namespace (`ip netns exec <NodeNS> ip link set eth0 down|up`),
// for tests that break the data plane; on the way up the machine's own
// addresses and its routes to its cluster's other pod ranges come back, as
// its network service and CNI would put them back.
func (s *Sandbox) SetUnderlay(cluster, node string, up bool) error {
	if s.world == nil {
		return errors.New("this sandbox has no data plane (--dataplane)")
	}
	if err := s.world.SetUnderlay(cluster, node, up); err != nil {
		return fmt.Errorf("underlay link of %s/%s: %w", cluster, node, err)
	}
	return nil
}
