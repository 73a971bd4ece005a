package netplan

import (
	"encoding/base64"
	"slices"
	"strings"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// Encryption. A pair of clusters is encrypted when either asks
// (ClusterEncryption). A cluster with at least one encrypted pair gets a
// WireGuard device on its edge nodes (every node in P2P, the gateway), its
// endpoints carry the keys their agents published, and its ClusterPeers say
// whether it asks. Which endpoint is reached through WireGuard is decided
// by each agent from its own and the remote cluster's asking (package
// peering), so the plan states facts, not pairs. An edge node of such a
// cluster that has published no key yet is a problem: encrypted peers do
// not reach it (no route, never a clear one) until it does.

// encryption marks the clusters whose edge nodes hold a WireGuard device.
func (p *planner) encryption(clusters []*clusterState) {
	asking := 0
	for _, cs := range clusters {
		if cs.asks {
			asking++
		}
	}
	for _, cs := range clusters {
		// Encrypted pairs exist when the cluster asks (and has a peer), or
		// another cluster does.
		others := asking
		if cs.asks {
			others--
		}
		cs.wireGuard = len(clusters) > 1 && (cs.asks || others > 0)
	}
}

// wireGuardDevice gives an edge node of an encrypting cluster its device.
func (p *planner) wireGuardDevice(cs *clusterState, n *Node, spec *v1alpha1.NodeConfigSpec) {
	if !cs.wireGuard || spec.WireGuard != nil {
		return
	}
	spec.WireGuard = &v1alpha1.WireGuardSpec{
		Device: v1alpha1.DeviceWireGuard, Port: v1alpha1.DefaultWireGuardPort,
		FirewallMark: v1alpha1.DefaultWireGuardFwMark, EncryptAll: cs.asks,
	}
	if n.LegacyAgent {
		p.problem("cluster %s: node %s runs an agent of an earlier release, which has no WireGuard: it is given no tunnel to encrypted peers (never a clear one) until its agent is upgraded; upgrade agents before turning encryption on", cs.spec.Name, n.Name)
	}
	if n.WireGuardKey == "" {
		p.problem("cluster %s: node %s has published no WireGuard key yet (NodeConfig status.wireGuard.publicKey); encrypted peers do not reach it until its agent does", cs.spec.Name, n.Name)
	}
}

// encryptionOf is what a cluster's ClusterPeers say it asks for: empty for
// None, so that a topology without encryption yields the objects it did.
func encryptionOf(cs *clusterState) v1alpha1.Encryption {
	if cs.asks {
		return v1alpha1.EncryptionWireGuard
	}
	return ""
}

// checkKeys treats a node whose published key is not a WireGuard key
// (base64 of 32 bytes), or is published by another node too, as keyless:
// a problem names it, and encrypted peers do not reach it (fail closed for
// it alone, never a freeze of the mesh: every agent drops only a bad peer).
// A key held twice means one of the nodes may be posing as the other, so
// every holder loses it.
//
// Next keys (a rotation under way) are checked against the current keys
// and each other in a map of their own, and only ever cost the node that
// published them its next key: a next key equal to any node's current
// key, or to another node's next key, is not carried (its rotation waits,
// a problem names it). A next key never blanks a current key: otherwise
// a node could make another keyless by announcing that node's key as its
// next one.
func (p *planner) checkKeys(clusters []*clusterState) {
	holders := map[string][]string{} // current keys
	nexts := map[string][]string{}   // next keys
	for _, cs := range clusters {
		for i := range cs.nodes {
			n := &cs.nodes[i]
			if n.WireGuardKey != "" {
				if raw, err := base64.StdEncoding.DecodeString(n.WireGuardKey); err != nil || len(raw) != 32 {
					p.problem("cluster %s: node %s published a WireGuard key that is not one (base64 of 32 bytes); it is treated as keyless: encrypted peers do not reach it", cs.spec.Name, n.Name)
					n.WireGuardKey = ""
				} else {
					holders[n.WireGuardKey] = append(holders[n.WireGuardKey], cs.spec.Name+"/"+n.Name)
				}
			}
			if n.WireGuardNextKey == "" {
				continue
			}
			if raw, err := base64.StdEncoding.DecodeString(n.WireGuardNextKey); err != nil || len(raw) != 32 || n.WireGuardKey == "" {
				p.problem("cluster %s: node %s published a next WireGuard key that is not one (base64 of 32 bytes) or no current key; its rotation waits", cs.spec.Name, n.Name)
				n.WireGuardNextKey = ""
			} else if n.WireGuardNextKey == n.WireGuardKey {
				n.WireGuardNextKey = "" // nothing to rotate to
			} else {
				nexts[n.WireGuardNextKey] = append(nexts[n.WireGuardNextKey], cs.spec.Name+"/"+n.Name)
			}
		}
	}
	for _, cs := range clusters {
		for i := range cs.nodes {
			n := &cs.nodes[i]
			self := cs.spec.Name + "/" + n.Name
			if h := holders[n.WireGuardKey]; n.WireGuardKey != "" && len(h) > 1 {
				others := slices.DeleteFunc(slices.Clone(h), func(s string) bool { return s == self })
				p.problem("cluster %s: node %s published the WireGuard key of %s too; it is treated as keyless: encrypted peers do not reach it", cs.spec.Name, n.Name, strings.Join(others, ", "))
				n.WireGuardKey = ""
			}
			if n.WireGuardNextKey == "" {
				continue
			}
			if n.WireGuardKey == "" {
				n.WireGuardNextKey = ""
				continue
			}
			if h := holders[n.WireGuardNextKey]; len(h) > 0 {
				p.problem("cluster %s: node %s published the current WireGuard key of %s as its next key; its rotation waits (peers are not given it), %s keeps its key", cs.spec.Name, n.Name, strings.Join(h, ", "), strings.Join(h, ", "))
				n.WireGuardNextKey = ""
			} else if h := nexts[n.WireGuardNextKey]; len(h) > 1 {
				others := slices.DeleteFunc(slices.Clone(h), func(s string) bool { return s == self })
				p.problem("cluster %s: node %s published a next WireGuard key %s published too; its rotation waits (peers are not given it)", cs.spec.Name, n.Name, strings.Join(others, ", "))
				n.WireGuardNextKey = ""
			}
		}
	}
}
