package tree

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of one controller; registered where the command says.
type metrics struct {
	syncs     *prometheus.CounterVec
	seconds   *prometheus.HistogramVec
	reachable *prometheus.GaugeVec
	nodes     prometheus.Gauge
}

func newMetrics() *metrics {
	return &metrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kosmos_tree_pod_syncs_total", Help: "Pod syncs between host and member, by cluster and result (ok, error).",
		}, []string{"cluster", "result"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kosmos_tree_pod_sync_duration_seconds", Help: "Duration of one pod sync, by cluster.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"cluster"}),
		reachable: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kosmos_tree_member_reachable", Help: "1 when the member's API server answered the last probe.",
		}, []string{"cluster"}),
		nodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kosmos_tree_virtual_nodes", Help: "Virtual nodes the tree keeps in the host.",
		}),
	}
}

// Register adds the tree's metrics to a registry.
func (c *Controller) Register(r prometheus.Registerer) error {
	if c.metrics == nil {
		c.metrics = newMetrics()
	}
	m := c.metrics
	for _, col := range []prometheus.Collector{m.syncs, m.seconds, m.reachable, m.nodes} {
		if err := r.Register(col); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) observe(cluster string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.syncs.WithLabelValues(cluster, result).Inc()
	m.seconds.WithLabelValues(cluster).Observe(time.Since(start).Seconds())
}
