// Package dnsplugin is the Kosmos CoreDNS plugin: it answers the
// multi-cluster zone (clusterset.local unless the topology's spec.dns.domain
// says otherwise) following the Multi-Cluster Services DNS specification
// (KEP-1645), from the ServiceImports and EndpointSlices the reconciler keeps
// in the plugin's own cluster. It writes nothing.
//
// # Records
//
//   - <svc>.<ns>.svc.<zone> A/AAAA. For a ClusterSetIP service: the
//     ServiceImport's spec.ips, the VIP: the ClusterIPs of the Service the
//     reconciler derived from the import in this cluster, whose
//     EndpointSlices kube-proxy balances over every exporting cluster. It
//     stays the answer whatever the endpoints' readiness, and its PTR is the
//     kubernetes plugin's (a real Service). Until the VIP is allocated
//     (spec.ips empty), the service addresses of the exporting clusters that
//     have ready endpoints, the local cluster's first: each imported
//     EndpointSlice carries its source cluster's ClusterIPs in the
//     kosmos.io/service-ips annotation, already translated to GlobalCIDR
//     addresses where the source cluster maps its service CIDR. For a
//     headless service: the ready endpoints of every exporting cluster, and
//     NXDOMAIN when there are none.
//   - <hostname>.<cluster>.<svc>.<ns>.svc.<zone> A/AAAA for headless
//     endpoints; an endpoint without a hostname is named by its address with
//     dashes.
//   - _<port>._<proto>.<svc>.<ns>.svc.<zone> SRV for every named port (to the
//     service name, or for headless services to every endpoint's name), with
//     the targets' addresses in the additional section; an SRV query of the
//     service name lists every named port.
//   - PTR records of other clusters' addresses (headless endpoints, and
//     services while an import has no VIP) when the plugin serves in-addr.arpa or ip6.arpa; the local
//     cluster's addresses have theirs in cluster.local, so in reverse zones
//     every other question goes to the next plugin. In `kosmos dns` the
//     kubernetes plugin comes first (dnsplugin/server), so a local address
//     is always answered by it.
//   - dns-version.<zone> TXT "1.0.0".
//
// A name that exists without records of the asked type is NODATA (NOERROR,
// SOA in the authority section); a name that does not exist is NXDOMAIN,
// which fallthrough passes on to the next plugin.
//
// # Shape
//
// Build is a pure function from ServiceImports and EndpointSlices to an
// immutable Index; Lookup answers one question from it. The plugin watches
// both kinds with client-go informers and swaps in a new index after every
// batch of changes, so queries never reach the API server and take no lock.
// The informers select only what the reconciler writes (labels
// app.kubernetes.io/managed-by=kosmos and kosmos.io/topology): an object
// anyone else creates, MCS labels and all, is never answered.
//
// # Usage
//
//	clusterset.local {
//	    kosmos {
//	        cluster member-a
//	        fallthrough
//	    }
//	}
package dnsplugin
