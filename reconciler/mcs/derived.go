package mcs

// Derived Services: the ClusterSetIP as a real VIP.
//
// KEP-1645 expects a clusterset IP "consistent for the life of a
// ServiceImport". The MCS implementations users know (the mcs-api reference
// controller, GKE, Submariner's service mode) give each importing cluster a
// local Service derived from the import: its ClusterIP is the VIP and its
// EndpointSlices hold every exporting cluster's endpoints, so the cluster's
// own kube-proxy balances across clusters. Kosmos does the same:
//
//   - the derived Service is named DerivedName(import): "kosmos-", the
//     import's name cut to 46 characters, "-" and 8 hex digits of an FNV-32a
//     hash of the full name (at most 62 characters, a DNS-1035 label); it
//     has no selector, the import's ports and session affinity, and the
//     labels managed-by/topology (inventory and prune) plus
//     multicluster.kubernetes.io/service-name (the import it belongs to);
//   - its ClusterIP is allocated by the API server: the plan never sets it.
//     Observe reads it back (Facts.Derived) and the next plan writes it into
//     the ServiceImport's spec.ips. On the pass that creates the Service
//     spec.ips is still empty (the preview says so: the field is absent); its
//     creation wakes the controller, whose next pass fills it. From then on it
//     is the same on every pass and across reconciler restarts, because the
//     Service is never re-created: apply leaves an unchanged object alone;
//   - its IP families follow the exports': one family → SingleStack of it,
//     both (across the exporting clusters) → PreferDualStack;
//   - the imported EndpointSlices of a ClusterSetIP import also carry
//     kubernetes.io/service-name: <derived name>, so kube-proxy programs
//     them for the derived Service. They keep the endpointslice managed-by
//     label of Kosmos: the cluster's EndpointSlice controllers leave them
//     alone (a Service without selector has none of its own anyway).
//
// Headless imports get no derived Service: their names resolve to the
// endpoints themselves.

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	mcsv1a1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
)

// Derived is one Service Kosmos derived from a ClusterSetIP import, as
// observed in the importing cluster.
type Derived struct {
	// Namespace and Import name the ServiceImport it belongs to (its
	// multicluster.kubernetes.io/service-name label).
	Namespace string `json:"namespace"`
	Import    string `json:"import"`
	// Name of the Service (DerivedName of the import, unless an older
	// version named it otherwise).
	Name string `json:"name"`
	// ClusterIPs the API server allocated, in the Service's family order.
	ClusterIPs []string `json:"clusterIPs,omitempty"`
}

// DerivedName is the name of the Service derived from the ServiceImport of
// that name: "kosmos-<name, at most 46 characters>-<8 hex digits of its
// FNV-32a hash>", at most 62 characters.
func DerivedName(importName string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(importName))
	base := importName
	if len(base) > 46 {
		base = base[:46]
	}
	return fmt.Sprintf("kosmos-%s-%08x", strings.TrimRight(base, "-"), h.Sum32())
}

// derived returns the observed derived Service of an import, or nil.
func (f *Facts) derived(ns, importName string) *Derived {
	if f == nil {
		return nil
	}
	for i := range f.Derived {
		if f.Derived[i].Namespace == ns && f.Derived[i].Import == importName {
			return &f.Derived[i]
		}
	}
	return nil
}

// derivedService is the Service the importing cluster gets for a
// ClusterSetIP import: no selector, no ClusterIP (the API server allocates
// it), the import's ports, affinity and IP families.
func (imp *imported) derivedService(topology string) *corev1.Service {
	labels := ownLabels(topology)
	labels[mcsv1a1.LabelServiceName] = imp.name
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Namespace: imp.namespace, Name: DerivedName(imp.name), Labels: labels},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP},
	}
	for _, p := range imp.ports {
		// targetPort as the API server defaults it (kube-proxy takes the
		// slices' ports): an unset one would differ from the live object.
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: p.Name, Protocol: cmp.Or(p.Protocol, corev1.ProtocolTCP), AppProtocol: p.AppProtocol,
			Port: p.Port, TargetPort: intstr.FromInt32(p.Port)})
	}
	if imp.affinity == corev1.ServiceAffinityClientIP {
		svc.Spec.SessionAffinity = imp.affinity
	}
	switch fams := imp.families(); len(fams) {
	case 1:
		svc.Spec.IPFamilyPolicy = policy(corev1.IPFamilyPolicySingleStack)
		svc.Spec.IPFamilies = fams
	case 2:
		// The cluster's primary family first; a single-stack importer still
		// gets a Service (of its one family).
		svc.Spec.IPFamilyPolicy = policy(corev1.IPFamilyPolicyPreferDualStack)
	}
	return svc
}

// families are the IP families of the exporting clusters' ClusterIPs, in
// the order the oldest export lists them.
func (imp *imported) families() []corev1.IPFamily {
	var out []corev1.IPFamily
	for _, e := range imp.exporters {
		for _, ip := range e.svc.ClusterIPs {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				continue
			}
			f := corev1.IPFamily(familyOf(a))
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

// setClusterSetIPs fills a ClusterSetIP import's spec.ips (and ipFamilies)
// from the derived Service observed in the importing cluster; empty until
// the API server has allocated its ClusterIP.
func setClusterSetIPs(si *mcsv1a1.ServiceImport, d *Derived) {
	if d == nil {
		return
	}
	for _, ip := range d.ClusterIPs {
		if a, err := netip.ParseAddr(ip); err == nil {
			si.Spec.IPs = append(si.Spec.IPs, a.String())
			si.Spec.IPFamilies = append(si.Spec.IPFamilies, corev1.IPFamily(familyOf(a)))
		}
	}
}

// derivedSliceLabel is the label that ties an imported slice of a
// ClusterSetIP import to its derived Service for kube-proxy.
func derivedSliceLabel(labels map[string]string, importName string) {
	labels[discoveryv1.LabelServiceName] = DerivedName(importName)
}

func policy(p corev1.IPFamilyPolicy) *corev1.IPFamilyPolicy { return &p }
