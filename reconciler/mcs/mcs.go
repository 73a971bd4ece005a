package mcs

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"kosmos.io/kosmos/internal/globalip"
	dnsconfig "kosmos.io/kosmos/kustomize/base/dns"
	"kosmos.io/kosmos/schema/v1alpha1"
)

const (
	// LabelEndpointSliceManagedBy keeps the cluster's EndpointSlice
	// controller away from imported slices.
	LabelEndpointSliceManagedBy = discoveryv1.LabelManagedBy
)

// Facts are what one cluster holds of exported services, as observed.
type Facts struct {
	// ObservedAt is when the cluster last answered.
	ObservedAt time.Time `json:"observedAt"`
	// Namespaces that exist; imports go only where their namespace is.
	Namespaces []string `json:"namespaces,omitempty"`
	// Exports are the cluster's ServiceExports.
	Exports []Export `json:"exports,omitempty"`
	// Services are the Services that are exported or named by the topology's
	// spec.services, with their endpoints.
	Services []Service `json:"services,omitempty"`
	// Imports are the ServiceImports Kosmos keeps in the cluster, with the
	// exporting clusters their status lists.
	Imports []Import `json:"imports,omitempty"`
	// Imported are the EndpointSlices Kosmos imported into the cluster from
	// other clusters (what a restarted reconciler knows of a cluster it
	// cannot reach).
	Imported []discoveryv1.EndpointSlice `json:"imported,omitempty"`
	// Derived are the Services Kosmos derived from ClusterSetIP imports in
	// the cluster, with the ClusterIPs the API server allocated (the
	// imports' spec.ips).
	Derived []Derived `json:"derived,omitempty"`
}

// Import is one ServiceImport Kosmos keeps: as observed (facts), or the
// status it should have (Output).
type Import struct {
	// Namespace and Name of the ServiceImport (those of the service).
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Type of the import as observed (facts only).
	Type mcsv1a1.ServiceImportType `json:"type,omitempty"`
	// Ports of the import as observed (facts only).
	Ports []mcsv1a1.ServicePort `json:"ports,omitempty"`
	// Clusters that export the service, sorted (status.clusters).
	Clusters []string `json:"clusters,omitempty"`
	// Changed is true when Clusters differ from the observed ones (a status
	// write is due); set in Output only.
	Changed bool `json:"changed,omitempty"`
}

// Export is one ServiceExport.
type Export struct {
	// Namespace and Name of the ServiceExport (those of the service).
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Created is its creationTimestamp: the oldest export wins conflicts.
	Created time.Time `json:"created"`
	// Owned says Kosmos wrote it (both ownership labels): it exists because of
	// spec.services and goes when spec.services no longer names it.
	Owned bool `json:"owned,omitempty"`
	// Conditions as last written.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Service is one Service with its ready and unready endpoints.
type Service struct {
	// Namespace and Name of the Service.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Type of the Service (ExternalName cannot be exported).
	Type corev1.ServiceType `json:"type,omitempty"`
	// Headless is clusterIP None: the import is Headless.
	Headless bool `json:"headless,omitempty"`
	// ClusterIPs of the Service, real (as in its cluster).
	ClusterIPs []string `json:"clusterIPs,omitempty"`
	// Ports of the Service.
	Ports []mcsv1a1.ServicePort `json:"ports,omitempty"`
	// SessionAffinity of the Service (None when empty).
	SessionAffinity corev1.ServiceAffinity `json:"sessionAffinity,omitempty"`
	// Slices are the Service's own EndpointSlices (address type, ports and
	// endpoints only), sorted by name.
	Slices []discoveryv1.EndpointSlice `json:"slices,omitempty"`
	// Global says ClusterIPs and slice addresses are already as other
	// clusters reach them (facts recovered from imports, not observed).
	Global bool `json:"global,omitempty"`
}

// Cluster is one cluster's part of the input.
type Cluster struct {
	// Name of the cluster in the topology.
	Name string
	// GlobalCIDRs maps the cluster's real pod and service CIDRs onto global
	// ones (the topology's network.globalCIDRs).
	GlobalCIDRs map[string]string
	// Facts observed (or carried over); nil when the cluster was never
	// reached.
	Facts *Facts
}

// Input is everything the export → import sync depends on.
type Input struct {
	// Topology names the topology (the kosmos.io/topology label).
	Topology string
	// Clusters in topology order.
	Clusters []Cluster
	// Services the topology exports (spec.services).
	Services []v1alpha1.ServiceSpec
	// Now is the time of the pass.
	Now time.Time
	// Expiry is how long the endpoints of a cluster that stopped answering
	// are kept; zero keeps them forever.
	Expiry time.Duration
	// Domain is the multi-cluster DNS zone (spec.dns.domain).
	Domain string
	// Started is when the reconciler started. A cluster it has never reached
	// keeps what other clusters hold imported from it (their import status
	// and slices), as if observed at Started, so a restart during an outage
	// does not drop its endpoints before the expiry.
	Started time.Time
}

// Output is the desired MCS state of every cluster.
type Output struct {
	// Objects by cluster: the kosmos-dns ConfigMap (the DNS server's
	// Corefile), ServiceExports for spec.services, ServiceImports, the
	// Services derived from ClusterSetIP imports and EndpointSlices, sorted
	// by kind, namespace and name.
	Objects map[string][]client.Object
	// Exports by cluster: the status conditions every ServiceExport should
	// carry; Changed marks those that differ from what was observed.
	Exports map[string][]ExportStatus
	// Imports by cluster: the status (exporting clusters) of every
	// ServiceImport, written to its status subresource after apply.
	Imports map[string][]Import
}

// ExportStatus is the status of one ServiceExport.
type ExportStatus struct {
	Namespace  string             `json:"namespace"`
	Name       string             `json:"name"`
	Conditions []metav1.Condition `json:"conditions"`
	// Changed is true when Conditions differ from the observed ones (a write
	// is due).
	Changed bool `json:"changed,omitempty"`
}

// exporter is one cluster's export of a service.
type exporter struct {
	cluster string
	export  Export
	svc     *Service
	facts   *Facts
	maps    map[string]string
	conds   []metav1.Condition
	valid   bool
}

// Compute plans the MCS objects of every cluster. It is pure.
func Compute(in Input) Output {
	out := Output{Objects: map[string][]client.Object{}, Exports: map[string][]ExportStatus{}, Imports: map[string][]Import{}}
	byKey := map[string][]*exporter{}
	in.Clusters = slices.Clone(in.Clusters) // recovered facts go into the copy
	for i, c := range in.Clusters {
		if c.Facts == nil {
			if c.Facts = recovered(in, c.Name); c.Facts == nil {
				continue
			}
			in.Clusters[i].Facts = c.Facts
		}
		for _, e := range effectiveExports(in, c, &out) {
			svc := c.Facts.service(e.Namespace, e.Name)
			k := e.Namespace + "/" + e.Name
			byKey[k] = append(byKey[k], &exporter{cluster: c.Name, export: e, svc: svc, facts: c.Facts, maps: c.GlobalCIDRs})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		exps := byKey[k]
		imp := resolve(exps)
		for _, e := range exps {
			st := ExportStatus{Namespace: e.export.Namespace, Name: e.export.Name, Conditions: withTimes(e.conds, e.export.Conditions, in.Now)}
			st.Changed = !sameConditions(st.Conditions, e.export.Conditions)
			out.Exports[e.cluster] = append(out.Exports[e.cluster], st)
		}
		if imp == nil {
			continue
		}
		for _, c := range in.Clusters {
			if c.Facts != nil && !slices.Contains(c.Facts.Namespaces, imp.namespace) {
				continue // the namespace is not there (yet): nothing to import into
			}
			out.Objects[c.Name] = append(out.Objects[c.Name], imp.objects(in, c)...)
			st := Import{Namespace: imp.namespace, Name: imp.name}
			for _, e := range imp.exporters {
				st.Clusters = append(st.Clusters, e.cluster)
			}
			slices.Sort(st.Clusters)
			st.Changed = c.Facts == nil || !slices.ContainsFunc(c.Facts.Imports, func(o Import) bool {
				return o.Namespace == st.Namespace && o.Name == st.Name && slices.Equal(o.Clusters, st.Clusters)
			})
			out.Imports[c.Name] = append(out.Imports[c.Name], st)
		}
	}
	for _, c := range in.Clusters {
		out.Objects[c.Name] = append(out.Objects[c.Name], &corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Namespace: v1alpha1.SystemNamespace, Name: v1alpha1.DNSConfigMap, Labels: ownLabels(in.Topology)},
			Data:       map[string]string{"Corefile": dnsconfig.Render(cmp.Or(in.Domain, v1alpha1.DefaultDNSDomain), c.Name)},
		})
	}
	for name, objs := range out.Objects {
		slices.SortFunc(objs, func(a, b client.Object) int {
			return cmp.Or(cmp.Compare(a.GetObjectKind().GroupVersionKind().Kind, b.GetObjectKind().GroupVersionKind().Kind),
				cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
		})
		out.Objects[name] = objs
	}
	return out
}

// recovered rebuilds the facts of a cluster never observed from what the
// first cluster observed holds imported from it: its exports (imports whose
// status lists it, of the import's type and ports; the newest, so it never
// overrides a reachable cluster) and its slices (already translated).
func recovered(in Input, name string) *Facts {
	var from *Facts
	for _, c := range in.Clusters {
		if c.Name != name && c.Facts != nil && len(c.Facts.Imports) > 0 && !c.Facts.ObservedAt.Before(in.Started) {
			from = c.Facts
			break
		}
	}
	if from == nil {
		return nil
	}
	f := &Facts{ObservedAt: in.Started}
	for _, imp := range from.Imports {
		if !slices.Contains(imp.Clusters, name) {
			continue
		}
		f.Namespaces = append(f.Namespaces, imp.Namespace)
		f.Exports = append(f.Exports, Export{Namespace: imp.Namespace, Name: imp.Name, Created: in.Now})
		svc := Service{Namespace: imp.Namespace, Name: imp.Name, Headless: imp.Type == mcsv1a1.Headless, Ports: imp.Ports, Global: true}
		for _, s := range from.Imported {
			if s.Namespace != imp.Namespace || s.Labels[mcsv1a1.LabelServiceName] != imp.Name || s.Labels[mcsv1a1.LabelSourceCluster] != name {
				continue
			}
			svc.Slices = append(svc.Slices, discoveryv1.EndpointSlice{AddressType: s.AddressType, Ports: s.Ports, Endpoints: s.Endpoints})
			if ips := s.Annotations[v1alpha1.AnnotationServiceIPs]; ips != "" {
				svc.ClusterIPs = append(svc.ClusterIPs, strings.Split(ips, ",")...)
			}
		}
		f.Services = append(f.Services, svc)
	}
	slices.Sort(f.Namespaces)
	f.Namespaces = slices.Compact(f.Namespaces)
	return f
}

// effectiveExports are the cluster's exports in force: the users' own
// ServiceExports and those spec.services asks for (which the reconciler
// writes, unless the user already has one of that name).
func effectiveExports(in Input, c Cluster, out *Output) []Export {
	var exps []Export
	user := map[string]bool{}
	owned := map[string]Export{}
	for _, e := range c.Facts.Exports {
		if e.Owned {
			owned[e.Namespace+"/"+e.Name] = e
			continue
		}
		user[e.Namespace+"/"+e.Name] = true
		exps = append(exps, e)
	}
	for _, s := range in.Services {
		k := s.Namespace + "/" + s.Name
		if user[k] {
			continue
		}
		if len(s.Clusters) > 0 && !slices.Contains(s.Clusters, c.Name) {
			continue
		}
		if len(s.Clusters) == 0 && c.Facts.service(s.Namespace, s.Name) == nil {
			continue // every cluster that has it: this one has not
		}
		if !slices.Contains(c.Facts.Namespaces, s.Namespace) {
			continue // no namespace, no service: exported once the namespace exists
		}
		e, ok := owned[k]
		if !ok {
			e = Export{Namespace: s.Namespace, Name: s.Name, Created: in.Now, Owned: true}
		}
		exps = append(exps, e)
		out.Objects[c.Name] = append(out.Objects[c.Name], &mcsv1a1.ServiceExport{
			TypeMeta:   metav1.TypeMeta{APIVersion: mcsv1a1.GroupVersion.String(), Kind: mcsv1a1.ServiceExportKindName},
			ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, Labels: ownLabels(in.Topology)},
		})
	}
	return exps
}

func (f *Facts) service(ns, name string) *Service {
	for i := range f.Services {
		if f.Services[i].Namespace == ns && f.Services[i].Name == name {
			return &f.Services[i]
		}
	}
	return nil
}

// imported is the resolved, clusterset-wide view of one service.
type imported struct {
	namespace, name string
	headless        bool
	ports           []mcsv1a1.ServicePort
	affinity        corev1.ServiceAffinity
	exporters       []*exporter // valid, oldest first
}

// resolve validates every export of one service and resolves conflicts as
// KEP-1645 says: the oldest export (creationTimestamp, then cluster name)
// defines the service; a later export of another type is left out, a later
// port that differs from an earlier one of the same name loses, and so does a
// different session affinity; each is reported with a Conflict condition on
// the export. nil: no valid export.
func resolve(exps []*exporter) *imported {
	slices.SortFunc(exps, func(a, b *exporter) int {
		return cmp.Or(a.export.Created.Compare(b.export.Created), cmp.Compare(a.cluster, b.cluster))
	})
	var imp *imported
	for _, e := range exps {
		switch {
		case e.svc == nil:
			e.conds = []metav1.Condition{
				cond(mcsv1a1.ServiceExportConditionValid, metav1.ConditionFalse, mcsv1a1.ServiceExportReasonNoService, fmt.Sprintf("cluster %s has no Service %s/%s", e.cluster, e.export.Namespace, e.export.Name)),
			}
			continue
		case e.svc.Type == corev1.ServiceTypeExternalName:
			e.conds = []metav1.Condition{
				cond(mcsv1a1.ServiceExportConditionValid, metav1.ConditionFalse, mcsv1a1.ServiceExportReasonInvalidServiceType, "ExternalName services cannot be exported"),
			}
			continue
		}
		valid := cond(mcsv1a1.ServiceExportConditionValid, metav1.ConditionTrue, mcsv1a1.ServiceExportReasonValid, "the service is exported")
		if imp == nil {
			imp = &imported{namespace: e.export.Namespace, name: e.export.Name, headless: e.svc.Headless, ports: slices.Clone(e.svc.Ports),
				affinity: affinity(e.svc), exporters: []*exporter{e}}
			e.valid = true
			e.conds = []metav1.Condition{valid, noConflict()}
			continue
		}
		oldest := imp.exporters[0].cluster
		if e.svc.Headless != imp.headless {
			e.conds = []metav1.Condition{valid, cond(mcsv1a1.ServiceExportConditionConflict, metav1.ConditionTrue, mcsv1a1.ServiceExportReasonTypeConflict,
				fmt.Sprintf("the service is %s here but %s in the oldest export (cluster %s); this cluster's endpoints are not imported", typeName(e.svc.Headless), typeName(imp.headless), oldest))}
			continue
		}
		conflicts := imp.mergePorts(e.svc.Ports)
		reason := mcsv1a1.ServiceExportReasonPortConflict
		if len(conflicts) == 0 {
			reason = mcsv1a1.ServiceExportReasonSessionAffinityConflict
		}
		if a := affinity(e.svc); a != imp.affinity {
			conflicts = append(conflicts, fmt.Sprintf("session affinity is %s here but %s in the oldest export (cluster %s)", a, imp.affinity, oldest))
		}
		e.valid = true
		imp.exporters = append(imp.exporters, e)
		if len(conflicts) > 0 {
			e.conds = []metav1.Condition{valid, cond(mcsv1a1.ServiceExportConditionConflict, metav1.ConditionTrue, reason, strings.Join(conflicts, "; ")+"; the oldest export's values are imported")}
		} else {
			e.conds = []metav1.Condition{valid, noConflict()}
		}
	}
	if imp != nil {
		slices.SortFunc(imp.ports, func(a, b mcsv1a1.ServicePort) int {
			return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Port, b.Port))
		})
	}
	return imp
}

// mergePorts adds the ports the import lacks and describes those that
// differ from an older export's (whose values stay).
func (imp *imported) mergePorts(ports []mcsv1a1.ServicePort) []string {
	var conflicts []string
	for _, p := range ports {
		i := slices.IndexFunc(imp.ports, func(q mcsv1a1.ServicePort) bool { return q.Name == p.Name })
		switch {
		case i < 0:
			imp.ports = append(imp.ports, p)
		case imp.ports[i].Port != p.Port || cmp.Or(imp.ports[i].Protocol, corev1.ProtocolTCP) != cmp.Or(p.Protocol, corev1.ProtocolTCP):
			conflicts = append(conflicts, fmt.Sprintf("port %q is %d/%s here but %d/%s in an older export", p.Name, p.Port, cmp.Or(p.Protocol, corev1.ProtocolTCP), imp.ports[i].Port, cmp.Or(imp.ports[i].Protocol, corev1.ProtocolTCP)))
		}
	}
	return conflicts
}

func affinity(s *Service) corev1.ServiceAffinity {
	return cmp.Or(s.SessionAffinity, corev1.ServiceAffinityNone)
}

func typeName(headless bool) string {
	if headless {
		return string(mcsv1a1.Headless)
	}
	return string(mcsv1a1.ClusterSetIP)
}

func noConflict() metav1.Condition {
	return cond(mcsv1a1.ServiceExportConditionConflict, metav1.ConditionFalse, mcsv1a1.ServiceExportReasonNoConflicts, "no conflict with other exports")
}

func cond(t mcsv1a1.ServiceExportConditionType, s metav1.ConditionStatus, r mcsv1a1.ServiceExportConditionReason, msg string) metav1.Condition {
	return metav1.Condition{Type: string(t), Status: s, Reason: string(r), Message: msg}
}

// withTimes sets each condition's lastTransitionTime: the observed one while
// the status is unchanged, now otherwise.
func withTimes(conds, observed []metav1.Condition, now time.Time) []metav1.Condition {
	out := make([]metav1.Condition, len(conds))
	for i, c := range conds {
		c.LastTransitionTime = metav1.NewTime(now.UTC().Truncate(time.Second))
		for _, o := range observed {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		out[i] = c
	}
	return out
}

func sameConditions(a, b []metav1.Condition) bool {
	return slices.EqualFunc(a, b, func(x, y metav1.Condition) bool {
		return x.Type == y.Type && x.Status == y.Status && x.Reason == y.Reason && x.Message == y.Message
	})
}

func ownLabels(topology string) map[string]string {
	return map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedBy, v1alpha1.LabelTopology: topology}
}

// objects are the ServiceImport, the derived Service (ClusterSetIP only)
// and the EndpointSlices of the service in the importing cluster.
func (imp *imported) objects(in Input, importer Cluster) []client.Object {
	si := &mcsv1a1.ServiceImport{
		TypeMeta:   metav1.TypeMeta{APIVersion: mcsv1a1.GroupVersion.String(), Kind: mcsv1a1.ServiceImportKindName},
		ObjectMeta: metav1.ObjectMeta{Namespace: imp.namespace, Name: imp.name, Labels: ownLabels(in.Topology)},
		Spec:       mcsv1a1.ServiceImportSpec{Type: mcsv1a1.ClusterSetIP, Ports: imp.ports},
	}
	if imp.headless {
		si.Spec.Type = mcsv1a1.Headless
	} else {
		// The VIP: the ClusterIP the API server gave the derived Service.
		setClusterSetIPs(si, importer.Facts.derived(imp.namespace, imp.name))
	}
	if imp.affinity == corev1.ServiceAffinityClientIP {
		si.Spec.SessionAffinity = imp.affinity
	}
	objs := []client.Object{si}
	if !imp.headless {
		objs = append(objs, imp.derivedService(in.Topology))
	}
	for _, e := range imp.exporters {
		if in.Expiry > 0 && in.Now.Sub(e.facts.ObservedAt) > in.Expiry {
			continue // the cluster stopped answering too long ago: its endpoints expire
		}
		objs = append(objs, e.slices(in, imp, importer.Name)...)
	}
	return objs
}

// clusterIPs are the exporter's ClusterIPs of an address family ("" for
// all) as the importing cluster reaches them.
func (e *exporter) clusterIPs(importer string, family discoveryv1.AddressType) []string {
	var out []string
	for _, ip := range e.svc.ClusterIPs {
		a, err := netip.ParseAddr(ip)
		if err != nil || (family != "" && familyOf(a) != family) {
			continue
		}
		out = append(out, e.translate(importer, a).String())
	}
	return out
}

// translate maps a real address of the exporting cluster to the address the
// importing cluster reaches it by: the same in the cluster itself, its
// global address elsewhere when a GlobalCIDR maps its range.
func (e *exporter) translate(importer string, a netip.Addr) netip.Addr {
	if importer == e.cluster || e.svc.Global {
		return a
	}
	return Translate(a, e.maps)
}

// Translate returns a's global address under the real → global CIDR map
// (host bits kept, as the NETMAP at the cluster's edge does), or a itself
// when no mapped range holds it.
func Translate(a netip.Addr, globalCIDRs map[string]string) netip.Addr {
	m, _ := globalip.Parse(globalCIDRs) // validation refused bad pairs; the good ones still map
	return m.ToGlobal(a)
}

func familyOf(a netip.Addr) discoveryv1.AddressType {
	if a.Is4() {
		return discoveryv1.AddressTypeIPv4
	}
	return discoveryv1.AddressTypeIPv6
}

// slices are the EndpointSlices of one exporter in the importing cluster:
// one per address family, holding every endpoint of the exporter's own
// slices of that family, addresses translated.
func (e *exporter) slices(in Input, imp *imported, importer string) []client.Object {
	var out []client.Object
	for _, family := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
		var eps []discoveryv1.Endpoint
		var ports []discoveryv1.EndpointPort
		for _, s := range e.svc.Slices {
			if s.AddressType != family {
				continue
			}
			if ports == nil {
				ports = s.Ports
			}
			for _, ep := range s.Endpoints {
				n := discoveryv1.Endpoint{Conditions: ep.Conditions, Hostname: ep.Hostname, Zone: ep.Zone}
				for _, addr := range ep.Addresses {
					if a, err := netip.ParseAddr(addr); err == nil {
						n.Addresses = append(n.Addresses, e.translate(importer, a).String())
					}
				}
				if len(n.Addresses) > 0 {
					eps = append(eps, n)
				}
			}
		}
		if len(eps) == 0 {
			continue
		}
		labels := ownLabels(in.Topology)
		labels[mcsv1a1.LabelServiceName] = imp.name
		labels[mcsv1a1.LabelSourceCluster] = e.cluster
		labels[LabelEndpointSliceManagedBy] = v1alpha1.EndpointSliceManagedBy
		if !imp.headless {
			derivedSliceLabel(labels, imp.name)
		}
		s := &discoveryv1.EndpointSlice{
			TypeMeta:    metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
			ObjectMeta:  metav1.ObjectMeta{Namespace: imp.namespace, Name: SliceName(imp.name, e.cluster, family), Labels: labels},
			AddressType: family,
			Endpoints:   eps,
			Ports:       ports,
		}
		if !imp.headless {
			if ips := e.clusterIPs(importer, family); len(ips) > 0 {
				s.Annotations = map[string]string{v1alpha1.AnnotationServiceIPs: strings.Join(ips, ",")}
			}
		}
		out = append(out, s)
	}
	return out
}

// SliceName names the imported slice of a service from one source cluster
// and family: readable, and unique through a hash of all three.
func SliceName(service, cluster string, family discoveryv1.AddressType) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(service + "/" + cluster + "/" + string(family)))
	base := service + "-" + cluster
	if len(base) > 230 {
		base = base[:230]
	}
	return fmt.Sprintf("%s-%08x", strings.TrimRight(base, "-."), h.Sum32())
}
