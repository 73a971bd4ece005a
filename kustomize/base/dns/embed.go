// Package dns embeds the Corefile of `kosmos dns`, so that the reconciler can
// render it for every cluster (the topology's DNS domain, the cluster's name)
// into the kosmos-system/kosmos-dns ConfigMap the DNS server mounts.
package dns

import (
	_ "embed"
	"strings"
)

// Corefile is the shipped Corefile: zone clusterset.local, cluster name from
// the KOSMOS_CLUSTER environment variable.
//
//go:embed Corefile
var Corefile string

// Render returns the Corefile for one cluster: the kosmos plugin serving
// domain, with cluster as the local cluster.
func Render(domain, cluster string) string {
	return strings.NewReplacer(
		"kosmos clusterset.local {", "kosmos "+domain+" {",
		"{$KOSMOS_CLUSTER}", cluster,
	).Replace(Corefile)
}
