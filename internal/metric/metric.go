// Package metric is the one way a role declares its Prometheus metrics: promauto on the node's own registry, every name prefixed swarmcast_<role>_.
//
// A role writes
//
//	f := metric.For(reg, "edge")
//	served := f.Counter("served_bytes_total", "Shard bytes uploaded to others.")
//
// and gets swarmcast_edge_served_bytes_total, registered on reg. The
// registry is always the node's (httpserve.NewRegistry), never the global
// one, so many nodes live in one process (testnet) without colliding; a
// duplicate name on one registry is a programming error and panics, as
// promauto does.
package metric

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Namespace is the first part of every Swarmcast metric name.
const Namespace = "swarmcast"

// Factory makes metrics named swarmcast_<role>_<name> and registers them
// on one registry.
type Factory struct {
	auto promauto.Factory
	role string
}

// For returns the factory of role ("edge", "origin", "viewer",
// "coordinator") on reg.
func For(reg prometheus.Registerer, role string) Factory {
	return Factory{auto: promauto.With(reg), role: role}
}

// Counter is a counter without labels.
func (f Factory) Counter(name, help string) prometheus.Counter {
	return f.auto.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: f.role, Name: name, Help: help})
}

// CounterVec is a counter with the given variable labels.
func (f Factory) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return f.auto.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: f.role, Name: name, Help: help}, labels)
}

// GaugeFunc is a gauge whose value is read from value at every scrape
// (value must be safe to call from the scraping goroutine).
func (f Factory) GaugeFunc(name, help string, value func() float64) prometheus.GaugeFunc {
	return f.auto.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: f.role, Name: name, Help: help}, value)
}

// Histogram is a histogram without labels; buckets are upper bounds in the
// unit the name states (seconds for *_seconds).
func (f Factory) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return f.auto.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: f.role, Name: name, Help: help, Buckets: buckets})
}

// GaugeVec is a gauge with the given variable labels.
func (f Factory) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return f.auto.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: f.role, Name: name, Help: help}, labels)
}

// Gauge is a gauge without labels.
func (f Factory) Gauge(name, help string) prometheus.Gauge {
	return f.auto.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: f.role, Name: name, Help: help})
}
