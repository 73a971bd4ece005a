package schema

import (
	"fmt"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"kosmos.io/kosmos/schema/v1alpha1"
)

var kindRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)

// clusterRef checks that name refers to a cluster of the topology and returns it.
func (v *validator) clusterRef(path, name string) *v1alpha1.ClusterSpec {
	if c := v.spec.Cluster(name); c != nil {
		return c
	}
	known := make([]string, len(v.spec.Clusters))
	for i, c := range v.spec.Clusters {
		known[i] = c.Name
	}
	if best := closest(name, known); best != "" {
		v.add(path, "unknown cluster %q; did you mean %q?", name, best)
	} else {
		v.add(path, "unknown cluster %q; clusters are: %s", name, strings.Join(known, ", "))
	}
	return nil
}

func (v *validator) policies() {
	names := map[string]int{}
	for i := range v.spec.DistributionPolicies {
		pol, p := &v.spec.DistributionPolicies[i], fmt.Sprintf("spec.distributionPolicies[%d]", i)
		v.dns1123Subdomain(p+".name", pol.Name)
		if j, dup := names[pol.Name]; dup && pol.Name != "" {
			v.add(p+".name", "%q is already the name of spec.distributionPolicies[%d]", pol.Name, j)
		} else {
			names[pol.Name] = i
		}
		v.podSelector(&pol.Selector, p+".selector")
		v.placement(&pol.Placement, p+".placement")
	}
}

func (v *validator) podSelector(s *v1alpha1.PodSelector, p string) {
	if s.Namespace != "" {
		v.dns1123Label(p+".namespace", s.Namespace)
	}
	if s.LabelSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(s.LabelSelector); err != nil {
			v.add(p+".labelSelector", "%v", err)
		}
	}
	if o := s.Owner; o != nil {
		if !kindRE.MatchString(o.Kind) {
			v.add(p+".owner.kind", "%q is not a kind (like Deployment or StatefulSet)", o.Kind)
		}
		if o.Name != "" {
			v.dns1123Subdomain(p+".owner.name", o.Name)
		}
	}
}

func (v *validator) placement(pl *v1alpha1.Placement, p string) {
	v.enum(p+".mode", string(pl.Mode), string(v1alpha1.PlacementRequired), string(v1alpha1.PlacementPreferred))
	if s := pl.Spread; s != nil {
		v.enum(p+".spread.by", string(s.By), string(v1alpha1.SpreadByRegion), string(v1alpha1.SpreadByZone), string(v1alpha1.SpreadByCluster))
		if s.MaxSkew < 1 {
			v.add(p+".spread.maxSkew", "%d is less than 1", s.MaxSkew)
		}
	}
	host := v.spec.Host()
	seen := map[string]int{}
	var weighted, fixed, positive int
	var placed []*v1alpha1.ClusterSpec
	for j, cp := range pl.Clusters {
		cpp := fmt.Sprintf("%s.clusters[%d]", p, j)
		c := v.clusterRef(cpp+".name", cp.Name)
		if k, dup := seen[cp.Name]; dup {
			v.add(cpp+".name", "cluster %q is already listed at %s.clusters[%d]", cp.Name, p, k)
		}
		seen[cp.Name] = j
		w, f, pos := v.share(&cp, cpp)
		weighted, fixed, positive = weighted+w, fixed+f, positive+pos
		if c == nil {
			continue
		}
		placed = append(placed, c)
		switch {
		case c.Role == v1alpha1.RoleHost && !pl.IncludeHost:
			v.add(cpp+".name", "%q is the host: set includeHost: true to place replicas on the host's own nodes", cp.Name)
		case c.Role == v1alpha1.RoleMember && !c.TreeEnabled():
			v.add(cpp+".name", "cluster %q has tree disabled, so the scheduler cannot place pods there", cp.Name)
		}
	}
	if weighted > 0 && fixed > 0 {
		v.add(p+".clusters", "mixes weights and fixed replicas: use one kind per policy")
	}
	if weighted > 0 && fixed == 0 && positive == 0 {
		v.add(p+".clusters", "every weight is 0: at least one must be positive")
	}
	if pl.IncludeHost && len(pl.Clusters) > 0 && host != nil {
		if _, ok := seen[host.Name]; !ok {
			v.add(p+".includeHost", "includeHost is set but clusters has no entry for the host %q: add one with its weight or replicas", host.Name)
		}
	}
	if len(pl.Clusters) == 0 {
		for i := range v.spec.Clusters {
			c := &v.spec.Clusters[i]
			if (c.Role == v1alpha1.RoleMember && c.TreeEnabled()) || (c.Role == v1alpha1.RoleHost && pl.IncludeHost) {
				placed = append(placed, c)
			}
		}
	}
	v.spreadDomains(pl, p, placed)
}

// share checks one cluster's share of a placement (a weight or fixed
// replicas) and counts it: weighted, fixed, and weighted above zero.
func (v *validator) share(cp *v1alpha1.ClusterPlacement, cpp string) (weighted, fixed, positive int) {
	switch {
	case cp.Weight == nil && cp.Replicas == nil:
		v.add(cpp, "set weight or replicas")
	case cp.Weight != nil && cp.Replicas != nil:
		v.add(cpp, "set weight or replicas, not both")
	case cp.Weight != nil:
		weighted = 1
		if *cp.Weight < 0 {
			v.add(cpp+".weight", "%d is negative", *cp.Weight)
		} else if *cp.Weight > 0 {
			positive = 1
		}
	default:
		fixed = 1
		if *cp.Replicas < 0 {
			v.add(cpp+".replicas", "%d is negative", *cp.Replicas)
		}
	}
	return weighted, fixed, positive
}

// spreadDomains checks that every cluster a policy places on has the label
// its spread domain needs.
func (v *validator) spreadDomains(pl *v1alpha1.Placement, p string, placed []*v1alpha1.ClusterSpec) {
	if pl.Spread == nil {
		return
	}
	for _, c := range placed {
		switch {
		case pl.Spread.By == v1alpha1.SpreadByRegion && c.Region == "":
			v.add(p+".spread.by", "spread by region needs a region on every placed cluster; cluster %q has none", c.Name)
		case pl.Spread.By == v1alpha1.SpreadByZone && c.Zone == "":
			v.add(p+".spread.by", "spread by zone needs a zone on every placed cluster; cluster %q has none", c.Name)
		}
	}
}

func (v *validator) services() {
	seen := map[string]int{}
	for i, s := range v.spec.Services {
		p := fmt.Sprintf("spec.services[%d]", i)
		v.dns1123Label(p+".namespace", s.Namespace)
		if s.Name == "" {
			v.add(p+".name", "required")
		} else if msgs := validation.IsDNS1035Label(s.Name); len(msgs) > 0 {
			v.add(p+".name", "%q is not a service name (a DNS-1035 label: lowercase letters, digits and '-', starting with a letter)", s.Name)
		}
		key := s.Namespace + "/" + s.Name
		if j, dup := seen[key]; dup {
			v.add(p, "service %s is already exported by spec.services[%d]", key, j)
		} else {
			seen[key] = i
		}
		listed := map[string]bool{}
		for j, name := range s.Clusters {
			cp := fmt.Sprintf("%s.clusters[%d]", p, j)
			if listed[name] {
				v.add(cp, "cluster %q is listed twice", name)
			}
			listed[name] = true
			v.clusterRef(cp, name)
		}
	}
}
