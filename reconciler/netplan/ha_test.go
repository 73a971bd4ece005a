package netplan

import (
	"slices"
	"testing"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// TestHotStandbys: every gateway candidate is an edge like the active one,
// and every node behind the gateway reaches every candidate and names
// them in order.
func TestHotStandbys(t *testing.T) {
	spec, facts := loadCase(t, "testdata/mixed-global")
	p := Compute(spec, facts)
	cp := p.Cluster("member-b")
	cands := slices.Concat([]string{cp.Gateway}, cp.Standby)
	if len(cands) != 2 {
		t.Fatalf("candidates %v, want 2 (replicas 2)", cands)
	}
	locals := map[string]v1alpha1.Device{}
	for _, nc := range cp.Configs {
		for _, d := range nc.Spec.Devices {
			if d.Name == v1alpha1.DeviceLocal {
				locals[nc.Name] = d
			}
		}
	}
	for _, nc := range cp.Configs {
		s := nc.Spec
		hasBridge := slices.ContainsFunc(s.Devices, func(d v1alpha1.Device) bool { return d.Name == v1alpha1.DeviceBridge })
		if slices.Contains(cands, nc.Name) {
			switch {
			case !hasBridge:
				t.Errorf("candidate %s: no vx-bridge", nc.Name)
			case len(s.NAT.Mappings) == 0 || len(s.NAT.Masquerade) == 0:
				t.Errorf("candidate %s: NAT %+v, want the mappings and the masquerade", nc.Name, s.NAT)
			case len(s.Peers.Paths) != 2 || s.Peers.Paths[0].Device != v1alpha1.DeviceBridge ||
				s.Peers.Paths[1].Device != v1alpha1.DeviceLocal || s.Peers.Paths[1].Via != "" || len(s.Peers.Paths[1].Candidates) != len(cands):
				t.Errorf("candidate %s: paths %+v, want vx-bridge, then vx-local naming every candidate without Via", nc.Name, s.Peers.Paths)
			}
			for other := range locals {
				if other != nc.Name && !slices.ContainsFunc(s.FDB, func(f v1alpha1.FDBEntry) bool { return f.MAC == locals[other].MAC }) {
					t.Errorf("candidate %s: no FDB entry for %s", nc.Name, other)
				}
			}
			continue
		}
		if hasBridge || len(s.NAT.Mappings) > 0 {
			t.Errorf("node %s behind the gateway is an edge", nc.Name)
		}
		path := s.Peers.Paths[0]
		var names []string
		for _, pc := range path.Candidates {
			names = append(names, pc.Name)
			d := locals[pc.Name]
			if !slices.ContainsFunc(s.FDB, func(f v1alpha1.FDBEntry) bool { return f.MAC == d.MAC && f.Dst == d.UnderlayIP }) ||
				!slices.ContainsFunc(s.Neighbors, func(n v1alpha1.Neighbor) bool { return n.MAC == d.MAC && n.IP == pc.Via }) {
				t.Errorf("node %s: no FDB or neighbour entry for candidate %s", nc.Name, pc.Name)
			}
		}
		if !slices.Equal(names, cands) || path.Via != path.Candidates[0].Via {
			t.Errorf("node %s: path %+v, want candidates %v with Via the first", nc.Name, path, cands)
		}
	}
	// The ClusterPeers name the candidates in order, each an endpoint.
	for _, sh := range cp.Peers {
		if !slices.Equal(sh.Spec.Gateways, cands) {
			t.Errorf("ClusterPeers gateways %v, want %v", sh.Spec.Gateways, cands)
		}
	}
}
