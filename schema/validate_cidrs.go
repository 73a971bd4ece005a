package schema

import (
	"fmt"
	"net/netip"

	"kosmos.io/kosmos/schema/v1alpha1"
)

// cidrRef is one parsed CIDR of the topology with where it came from.
type cidrRef struct {
	path    string
	prefix  netip.Prefix
	what    string // "pod CIDR", "service CIDR", "GlobalCIDR", "bridge CIDR", "local CIDR"
	cluster string // "" for the tunnel ranges
	mapped  bool   // a real CIDR that has a GlobalCIDR
}

func (r cidrRef) String() string {
	if r.cluster == "" {
		return fmt.Sprintf("the %s %q (%s)", r.what, r.prefix, r.path)
	}
	return fmt.Sprintf("%s %q of cluster %q", r.what, r.prefix, r.cluster)
}

// parseCIDR parses a canonical CIDR and reports why it is not one.
func (v *validator) parseCIDR(path, s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		v.add(path, "%q is not a CIDR", s)
		return netip.Prefix{}, false
	}
	if p.Masked() != p {
		v.add(path, "%q has host bits set; did you mean %q?", s, p.Masked().String())
		return netip.Prefix{}, false
	}
	return p, true
}

func familyOf(p netip.Prefix) v1alpha1.IPFamily {
	if p.Addr().Is4() {
		return v1alpha1.IPv4
	}
	return v1alpha1.IPv6
}

// cidrs checks every address range of the topology: syntax, family, and the
// overlap rules between clusters, GlobalCIDRs and the tunnel ranges.
func (v *validator) cidrs() {
	tunnels := v.tunnelCIDRs()
	var reals, globals []cidrRef
	for i := range v.spec.Clusters {
		c := &v.spec.Clusters[i]
		r, g := v.clusterCIDRs(c, clusterPath(i)+".network")
		if !c.NetworkEnabled() {
			continue // a cluster outside ClusterLink may overlap anything
		}
		reals = append(reals, r...)
		globals = append(globals, g...)
	}
	for i, b := range reals {
		for _, a := range reals[:i] {
			if a.cluster != b.cluster && a.prefix.Overlaps(b.prefix) && !(a.mapped && b.mapped) {
				v.add(b.path, "%q overlaps %s: map both onto GlobalCIDRs (network.globalCIDRs) so the clusters can reach each other", b.prefix, a)
			}
		}
		for _, t := range tunnels {
			if t.prefix.Overlaps(b.prefix) {
				v.add(b.path, "%q overlaps %s: change one of them", b.prefix, t)
			}
		}
	}
	for i, g := range globals {
		for _, o := range globals[:i] {
			if o.prefix.Overlaps(g.prefix) {
				v.add(g.path, "GlobalCIDR %q overlaps %s: GlobalCIDRs are unique", g.prefix, o)
			}
		}
		for _, r := range reals {
			if r.prefix.Overlaps(g.prefix) {
				v.add(g.path, "GlobalCIDR %q overlaps %s: a GlobalCIDR must not overlap any real range", g.prefix, r)
			}
		}
		for _, t := range tunnels {
			if t.prefix.Overlaps(g.prefix) {
				v.add(g.path, "GlobalCIDR %q overlaps %s", g.prefix, t)
			}
		}
	}
}

// tunnelCIDRs checks the bridge and local ranges and returns the valid ones.
func (v *validator) tunnelCIDRs() []cidrRef {
	n := &v.spec.Network
	var out []cidrRef
	for _, e := range []struct {
		path, what, value string
		family            v1alpha1.IPFamily
	}{
		{"spec.network.bridgeCIDRs.ipv4", "bridge CIDR", n.BridgeCIDRs.IPv4, v1alpha1.IPv4},
		{"spec.network.bridgeCIDRs.ipv6", "bridge CIDR", n.BridgeCIDRs.IPv6, v1alpha1.IPv6},
		{"spec.network.localCIDRs.ipv4", "local CIDR", n.LocalCIDRs.IPv4, v1alpha1.IPv4},
		{"spec.network.localCIDRs.ipv6", "local CIDR", n.LocalCIDRs.IPv6, v1alpha1.IPv6},
	} {
		p, ok := v.parseCIDR(e.path, e.value)
		if !ok {
			continue
		}
		if familyOf(p) != e.family {
			v.add(e.path, "%q is not an %s CIDR", e.value, e.family)
			continue
		}
		ref := cidrRef{path: e.path, prefix: p, what: e.what}
		for _, o := range out {
			if o.prefix.Overlaps(p) {
				v.add(e.path, "%q overlaps %s", e.value, o)
			}
		}
		out = append(out, ref)
	}
	return out
}

// clusterCIDRs checks one cluster's pod, service and global ranges and returns
// the valid real ones (marked when mapped) and the valid global ones.
func (v *validator) clusterCIDRs(c *v1alpha1.ClusterSpec, np string) (reals, globals []cidrRef) {
	n := &c.Network
	list := func(field, what string, values []string) {
		families := map[v1alpha1.IPFamily]bool{}
		for j, s := range values {
			path := fmt.Sprintf("%s.%s[%d]", np, field, j)
			p, ok := v.parseCIDR(path, s)
			if !ok {
				continue
			}
			f := familyOf(p)
			families[f] = true
			if (n.IPFamily == v1alpha1.IPv4 || n.IPFamily == v1alpha1.IPv6) && f != n.IPFamily {
				v.add(path, "%q is %s but the cluster's ipFamily is %s", s, f, n.IPFamily)
				continue
			}
			ref := cidrRef{path: path, prefix: p, what: what, cluster: c.Name}
			for _, o := range reals {
				if o.prefix.Overlaps(p) {
					v.add(path, "%q overlaps the cluster's own %s %q (%s)", s, o.what, o.prefix, o.path)
				}
			}
			reals = append(reals, ref)
		}
		if n.IPFamily == v1alpha1.DualStack && len(values) > 0 && !(families[v1alpha1.IPv4] && families[v1alpha1.IPv6]) {
			v.add(np+"."+field, "ipFamily DualStack needs an IPv4 and an IPv6 CIDR")
		}
	}
	list("podCIDRs", "pod CIDR", n.PodCIDRs)
	list("serviceCIDRs", "service CIDR", n.ServiceCIDRs)

	for _, real := range sortedKeys(n.GlobalCIDRs) {
		if g, ok := v.globalCIDR(c, np, real, reals); ok {
			globals = append(globals, g)
		}
	}
	return reals, globals
}

// globalCIDR checks one entry real → global of a cluster's globalCIDRs
// against its real ranges (marking the one it maps) and returns the global
// range when valid.
func (v *validator) globalCIDR(c *v1alpha1.ClusterSpec, np, real string, reals []cidrRef) (cidrRef, bool) {
	path := fmt.Sprintf("%s.globalCIDRs[%s]", np, real)
	rp, ok := v.parseCIDR(path, real)
	if !ok {
		return cidrRef{}, false
	}
	idx := -1 // the last real range equal to it (a duplicate is reported as an overlap)
	for j := range reals {
		if reals[j].prefix == rp {
			idx = j
		}
	}
	if idx < 0 {
		v.add(path, "%q is not one of the cluster's pod or service CIDRs", real)
		return cidrRef{}, false
	}
	gp, ok := v.parseCIDR(path, c.Network.GlobalCIDRs[real])
	if !ok {
		return cidrRef{}, false
	}
	switch {
	case familyOf(gp) != familyOf(rp):
		v.add(path, "GlobalCIDR %q is %s but %q is %s", gp, familyOf(gp), rp, familyOf(rp))
	case gp.Bits() != rp.Bits():
		v.add(path, "GlobalCIDR %q is a /%d but %q is a /%d: a 1:1 mapping needs the same size", gp, gp.Bits(), rp, rp.Bits())
	default:
		reals[idx].mapped = true
		return cidrRef{path: path, prefix: gp, what: "GlobalCIDR", cluster: c.Name}, true
	}
	return cidrRef{}, false
}
