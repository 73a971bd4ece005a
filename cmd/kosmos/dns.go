package main

import (
	"slices"

	"github.com/spf13/cobra"

	"kosmos.io/kosmos/dnsplugin/server"
)

func newDNSCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "dns [-conf FILE] [COREDNS FLAGS]",
		Short: "CoreDNS with its standard plugins and the kosmos plugin (clusterset.local)",
		Long: `Dns is CoreDNS, with every standard plugin and every flag of it, plus the
kosmos plugin: it answers <svc>.<ns>.svc.clusterset.local (the topology's
spec.dns.domain) from the ServiceImports and EndpointSlices the Kosmos
reconciler keeps in this cluster, following the Multi-Cluster Services DNS
specification, reading only the objects the reconciler labelled as its own.
The kosmos directive runs after kubernetes: one server answers the clusterset
and the cluster-local zone, and in the reverse zones the cluster's own
addresses are answered by kubernetes before kosmos sees the question.

The Corefile shipped in kustomize/base/dns/Corefile serves both zones with
health, ready and Prometheus metrics; set KOSMOS_CLUSTER to the name of the
cluster it runs in (its own endpoints are answered first). The reconciler
renders it for every cluster, with the topology's domain and the cluster's
name, into the ConfigMap kosmos-system/kosmos-dns (key Corefile).

Flags are CoreDNS's own (single dash): -conf, -dns.port, -plugins, -version.`,
		Example: `  KOSMOS_CLUSTER=member-a kosmos dns -conf kustomize/base/dns/Corefile
  kosmos dns -conf Corefile -dns.port 1053
  kosmos dns -plugins     # list the plugins compiled in, kosmos among them`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "--help" || a == "-help" }) {
				return cmd.Help()
			}
			server.Run(args)
			return nil
		},
	}
}
