package reconciler

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	metricPassSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "kosmos_reconcile_duration_seconds", Help: "Duration of a reconcile pass, by cluster.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	}, []string{"cluster"})
	metricObjects = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kosmos_reconcile_objects_total", Help: "Objects written, by cluster and action (created, updated, pruned).",
	}, []string{"cluster", "action"})
	metricRejected = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kosmos_topology_rejected_total", Help: "Topology documents rejected as invalid (the last good one stayed in force).",
	})
	metricErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kosmos_reconcile_errors_total", Help: "Passes that failed in a cluster.",
	}, []string{"cluster"})
)

// RegisterMetrics adds the reconciler's metrics to a registry.
func RegisterMetrics(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{metricPassSeconds, metricObjects, metricErrors, metricRejected} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func observeCluster(cr ClusterReport, d time.Duration) {
	metricPassSeconds.WithLabelValues(cr.Name).Observe(d.Seconds())
	metricObjects.WithLabelValues(cr.Name, "created").Add(float64(len(cr.Result.Created)))
	metricObjects.WithLabelValues(cr.Name, "updated").Add(float64(len(cr.Result.Updated)))
	metricObjects.WithLabelValues(cr.Name, "pruned").Add(float64(len(cr.Result.Pruned)))
	if cr.Err != nil {
		metricErrors.WithLabelValues(cr.Name).Inc()
	}
}
