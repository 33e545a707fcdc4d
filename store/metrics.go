package store

import "github.com/prometheus/client_golang/prometheus"

// metrics are the store's collectors (SPEC.md section 14).
type metrics struct {
	connected prometheus.Gauge
	revision  prometheus.Gauge
	refused   prometheus.Gauge
}

// newMetrics declares the collectors and registers them on reg, when not
// nil.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spacerouter_store_connected",
			Help: "1 while etcd answers the router, 0 while it does not (the router serves its last config).",
		}),
		revision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spacerouter_store_applied_revision",
			Help: "The etcd revision of the config the router serves: every change up to it is applied.",
		}),
		refused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spacerouter_store_refused_keys",
			Help: "Keys under the store's prefix refused now (their last good value, or nothing, is in force).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.connected, m.revision, m.refused)
	}
	return m
}
