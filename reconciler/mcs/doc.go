// Package mcs is the Multi-Cluster Services (KEP-1645) sync of the
// reconciler: from the ServiceExports of every cluster (and the topology's
// spec.services) to a ServiceImport and EndpointSlices per exported service
// in every cluster, which the Kosmos CoreDNS plugin (dnsplugin) answers from.
//
// # Pure core
//
// Compute is a pure function of the observed Facts (namespaces, exports,
// Services with their EndpointSlices, when each cluster last answered), the
// clusters' GlobalCIDR maps and the time. Observe reads the facts and
// WriteStatus writes export conditions; objects are applied and pruned by
// reconciler/apply like every other Kosmos object (ownership labels, field
// manager kosmos), so a user's own ServiceExport, which lacks the labels, is
// never deleted.
//
// # Exports and conflicts
//
// A service is exported by a ServiceExport in its cluster, or by
// spec.services (every listed cluster, or every cluster that has the
// Service), for which the reconciler writes the ServiceExport unless the user
// has one. The oldest export (creationTimestamp, then cluster name) defines
// the import: its type, its ports where a later export's port of the same
// name differs (PortConflict), and its session affinity
// (SessionAffinityConflict); the later cluster's endpoints still count. A
// later export of the other type (ClusterSetIP vs Headless) is left out
// (TypeConflict). Every export carries Valid and Conflict conditions.
//
// # The ClusterSetIP
//
// MCS has the importing cluster allocate a clusterset VIP that kube-proxy
// programs. Kosmos derives, in every cluster that imports a ClusterSetIP
// service, a Service named DerivedName(import) ("kosmos-<name>-<hash>"):
// no selector, the import's ports, affinity and IP families, and no
// ClusterIP in the plan: the API server allocates it. Observe reads it back
// (Facts.Derived) and the ServiceImport's spec.ips is that ClusterIP,
// stable for the life of the import and across reconciler restarts (empty
// on the pass that creates the Service; the next pass fills it). The
// imported EndpointSlices of the import also carry kubernetes.io/service-name
// of the derived Service, so the cluster's kube-proxy balances the VIP over
// every exporting cluster's endpoints (reached over ClusterLink, by their
// global addresses where a cluster maps its CIDRs). Each slice still carries
// its source cluster's ClusterIPs, translated, in the kosmos.io/service-ips
// annotation (what the DNS plugin answers while an import has no VIP yet,
// and what a restarted reconciler recovers an unreachable cluster from).
// The derived Service goes with the import (prune). See derived.go.
//
// # The DNS server's configuration
//
// Every cluster also gets the ConfigMap kosmos-system/kosmos-dns: the
// Corefile of `kosmos dns` (kustomize/base/dns) with the topology's
// spec.dns.domain and the cluster's name, so the plugin serves the domain the
// topology names without reading the topology itself.
//
// # Endpoints
//
// One EndpointSlice per source cluster and address family, labelled
// multicluster.kubernetes.io/service-name and .../source-cluster, holding the
// source's endpoints with addresses translated to global ones when the
// source maps its pod CIDR (in the source cluster itself, the real ones).
// The endpoints of a cluster that stopped answering stay (from its last
// facts) until Input.Expiry has passed since it last answered, then go;
// its export still counts. A reconciler that (re)starts while a cluster is
// down has no facts of it: it takes the cluster's exports and slices from
// what the first reachable cluster holds imported from it, and counts the
// expiry from its own start. Removing every export removes the import
// everywhere (prune).
package mcs
