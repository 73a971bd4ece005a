package v1alpha1

// Multi-cluster service discovery contract between the reconciler (which
// writes ServiceImports and EndpointSlices in every cluster) and the Kosmos
// CoreDNS plugin (which answers from them). The well-known MCS labels
// (multicluster.kubernetes.io/service-name, .../source-cluster) come from
// sigs.k8s.io/mcs-api; these are the Kosmos additions.
const (
	// AnnotationServiceIPs is set on every EndpointSlice the reconciler
	// imports for a ClusterSetIP service: the source cluster's ClusterIPs of
	// the service of the slice's address family, comma-separated, as the
	// importing cluster reaches them (GlobalCIDR addresses when the source
	// cluster maps its service CIDR). The DNS plugin answers A/AAAA queries of
	// ClusterSetIP services with them. Headless services have none.
	AnnotationServiceIPs = "kosmos.io/service-ips"

	// EndpointSliceManagedBy is the endpointslice.kubernetes.io/managed-by
	// value of imported slices, so that the cluster's own EndpointSlice
	// controller leaves them alone.
	EndpointSliceManagedBy = "kosmos.io"

	// DNSSchemaVersion is the version of the multi-cluster DNS specification
	// (KEP-1645) the plugin implements, served as the TXT record of
	// dns-version.<domain>.
	DNSSchemaVersion = "1.0.0"
)
