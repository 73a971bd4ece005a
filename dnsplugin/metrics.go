package dnsplugin

import (
	"github.com/coredns/coredns/plugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	// requestCount counts the queries the plugin answered, by server, query
	// type and response code.
	requestCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: Name,
		Name:      "requests_total",
		Help:      "Counter of queries answered by the kosmos plugin, by query type and response code.",
	}, []string{"server", "type", "rcode"})

	// indexNames is the number of owner names in the current index.
	indexNames = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: Name,
		Name:      "index_names",
		Help:      "Number of names the kosmos plugin serves, by zone.",
	}, []string{"zone"})

	// indexBuilds counts index rebuilds (one per batch of changes).
	indexBuilds = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: Name,
		Name:      "index_builds_total",
		Help:      "Counter of rebuilds of the kosmos plugin's index after ServiceImport or EndpointSlice changes.",
	})
)
