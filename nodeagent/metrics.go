package nodeagent

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the agent's passes, registered by whoever serves them.
var (
	metricPasses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kosmos_agent_passes_total",
		Help: "Read-compare-apply passes, by outcome (ok, refused, failed).",
	}, []string{"outcome"})
	metricChanges = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kosmos_agent_kernel_changes_total",
		Help: "Kernel writes made by the agent.",
	})
	metricWireGuardPeers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kosmos_agent_wireguard_peers",
		Help: "WireGuard peers configured on the node's device, by path (kernel, or userspace: wireguard-go in the agent).",
	}, []string{"path"})
	metricWireGuardHandshakes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kosmos_agent_wireguard_peers_handshaken",
		Help: "WireGuard peers with at least one completed handshake.",
	})
	metricPassSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kosmos_agent_pass_duration_seconds",
		Help:    "Duration of one pass.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	})
)

// Metrics of gateway HA (probe.go).
var (
	metricFailovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kosmos_gateway_failovers_total",
		Help: "Times the agent moved its routes to another gateway candidate of a cluster, by cluster.",
	}, []string{"cluster"})
	metricProbeRTT = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kosmos_gateway_probe_rtt_seconds",
		Help:    "Round-trip time of the gateway candidate probes.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
	})
)

// RegisterMetrics adds the agent's metrics to a registry.
func RegisterMetrics(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{metricPasses, metricChanges, metricPassSeconds, metricWireGuardPeers, metricWireGuardHandshakes, metricFailovers, metricProbeRTT, metricMoveSeconds, metricOffloadRepairs, metricOffloadRefused, metricWireGuardRotationWaiting} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func observePass(res Result, err error, seconds float64) {
	outcome := "ok"
	switch {
	case err != nil && len(res.Applied) == 0 && len(res.Failed) == 0:
		outcome = "refused"
	case err != nil:
		outcome = "failed"
	}
	metricPasses.WithLabelValues(outcome).Inc()
	metricChanges.Add(float64(len(res.Applied)))
	countOffloadRepairs(res.Applied)
	countOffloadRefused(res.Warnings)
	metricPassSeconds.Observe(seconds)
}
