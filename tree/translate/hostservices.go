// This file makes the host's Services reachable by name from member
// copies, with no change to the application.
//
// DNS. A copy resolves names at the host's cluster DNS, not the
// member's: dnsPolicy None with a dnsConfig that names the host's DNS
// (HostDNS.Nameserver, an address reachable from the member over
// ClusterLink: by default the ClusterIP of the host's kube-system/kube-dns
// Service) and the search path the host's kubelet would give the pod
// (<namespace>.svc.<domain>, svc.<domain>, <domain>; ndots 5), followed by
// what the pod's own dnsConfig adds. So backend, backend.shop and
// backend.shop.svc.cluster.local all resolve to the host's Service, as they
// do in the host. The alternative, mirroring the host's Services and
// EndpointSlices into each member, would take the member's service CIDR
// and its kube-proxy, and collide with the member's own Services of the
// same names; pointing the DNS at the host keeps one source of truth. The
// limits: names of the member's own Services no longer resolve by short
// name (they are the member's, not the application's); the host's DNS must
// be reachable from the member's pods (ClusterLink routes the host's
// service CIDR, or the address given is one that is routed); a pod with
// dnsPolicy Default or None, or with the annotation AnnotationMemberDNS
// "member", keeps its own. The tree's --host-dns off turns it off.
//
// Environment. With enableServiceLinks on (the default) the member's
// kubelet would give a copy the member's Services as variables; the copy
// gets the host's instead: ServiceEnv of the host's Services of its
// namespace, as the host's kubelet computes them, set in each container's
// env ahead of the container's own variables (which win on a clash, as
// they would over the kubelet's), and enableServiceLinks off so that the
// member adds none of its own. A variable of the same name from envFrom is
// overridden by the host's Service variable (the kubelet lets envFrom
// win); services created after the pod started are not seen, as with a
// kubelet.

package translate

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/kubelet/envvars"
)

// AnnotationMemberDNS, "member" on a host pod, keeps its copy on the
// member's DNS (the default is the host's: HostDNS).
const AnnotationMemberDNS = "kosmos.io/member-dns"

// HostDNS is the host's cluster DNS as copies reach it.
type HostDNS struct {
	// Nameserver is its address (an IP), reachable from member pods.
	Nameserver string
	// ClusterDomain is the host's cluster domain (cluster.local).
	ClusterDomain string
}

// maxNameservers is the most nameservers a pod may list.
const maxNameservers = 3

// useHostDNS points spec (a copy of a pod of namespace ns with
// annotations ann) at the host's DNS when the pod resolves through the
// cluster's DNS (dnsPolicy ClusterFirst, or ClusterFirstWithHostNet) and
// has not asked to keep the member's.
func useHostDNS(spec *corev1.PodSpec, ns string, ann map[string]string, d *HostDNS) {
	if d == nil || d.Nameserver == "" || ann[AnnotationMemberDNS] == "member" {
		return
	}
	switch spec.DNSPolicy {
	case "", corev1.DNSClusterFirst:
		if spec.HostNetwork {
			return // the kubelet gives it the node's resolver
		}
	case corev1.DNSClusterFirstWithHostNet:
	default:
		return // Default or None: the pod chose
	}
	domain := d.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	own := spec.DNSConfig
	if own == nil {
		own = &corev1.PodDNSConfig{}
	}
	cfg := &corev1.PodDNSConfig{
		Nameservers: []string{d.Nameserver},
		Searches:    []string{ns + ".svc." + domain, "svc." + domain, domain},
	}
	for _, n := range own.Nameservers {
		if len(cfg.Nameservers) < maxNameservers && !slices.Contains(cfg.Nameservers, n) {
			cfg.Nameservers = append(cfg.Nameservers, n)
		}
	}
	for _, s := range own.Searches {
		if !slices.Contains(cfg.Searches, s) {
			cfg.Searches = append(cfg.Searches, s)
		}
	}
	five := "5"
	cfg.Options = []corev1.PodDNSConfigOption{{Name: "ndots", Value: &five}}
	for _, o := range own.Options {
		if i := slices.IndexFunc(cfg.Options, func(c corev1.PodDNSConfigOption) bool { return c.Name == o.Name }); i >= 0 {
			cfg.Options[i] = o // the pod's own wins, as the kubelet merges them
			continue
		}
		cfg.Options = append(cfg.Options, o)
	}
	spec.DNSPolicy, spec.DNSConfig = corev1.DNSNone, cfg
}

// ServiceEnv is the service-link environment of a pod of namespace ns in
// the host: the variables the host's kubelet derives from services (the
// host's Services of ns; the API server's own, default/kubernetes, is
// left to the KUBERNETES_SERVICE_* handling of MemberPod), sorted as the
// kubelet sorts them.
func ServiceEnv(ns string, services []*corev1.Service) []corev1.EnvVar {
	var in []*corev1.Service
	for _, s := range services {
		if s.Namespace == ns && !(s.Namespace == "default" && s.Name == "kubernetes") {
			in = append(in, s)
		}
	}
	slices.SortFunc(in, func(a, b *corev1.Service) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return envvars.FromServices(in)
}

// useHostServiceEnv gives every container of spec the host's service
// variables env (its own variables of the same names win) and turns the
// member's service links off. A pod with enableServiceLinks false gets
// none.
func useHostServiceEnv(spec *corev1.PodSpec, env []corev1.EnvVar) {
	if spec.EnableServiceLinks != nil && !*spec.EnableServiceLinks {
		return
	}
	off := false
	spec.EnableServiceLinks = &off
	if len(env) == 0 {
		return
	}
	add := func(cs []corev1.Container) {
		for i := range cs {
			c := &cs[i]
			var out []corev1.EnvVar
			for _, e := range env {
				if !slices.ContainsFunc(c.Env, func(o corev1.EnvVar) bool { return o.Name == e.Name }) {
					out = append(out, e)
				}
			}
			c.Env = append(out, c.Env...)
		}
	}
	add(spec.InitContainers)
	add(spec.Containers)
}
