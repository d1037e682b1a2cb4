// Package stats is Waygate's stats store: counters, gauges and histograms
// addressed by Envoy's dotted stat names
// (cluster.<name>.upstream_rq_total, http.<stat_prefix>.downstream_rq_2xx,
// listener.<address>.downstream_cx_total), so that dashboards, alerts and
// tools written for Envoy and Istio read Waygate unchanged.
//
// Stats are looked up once, when config compiles, and kept in the compiled
// snapshot: incrementing a counter is then one atomic add, with no lock and
// no allocation. Creating a stat takes a lock, so it may happen at any
// time (Wasm plugins define metrics at run time).
//
// The Prometheus exposition follows Envoy's /stats/prometheus: a stat's
// name has its tags extracted as Envoy's default tag extractors do (see
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/metrics/v3/stats.proto#config-metrics-v3-statsconfig
// and Envoy's source/common/config/well_known_names.cc), and the rest,
// sanitized and prefixed with "envoy_", becomes the metric name. Because
// cluster names carry dots and "|", a scope is created with its tags
// (Store.Scope("cluster."+name+".", Tag{TagClusterName, name})) rather than
// having them parsed back out of the name; names without scope tags fall
// back to Envoy's default rules.
package stats
