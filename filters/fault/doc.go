// Package fault is Envoy's HTTP fault injection filter
// (envoy.extensions.filters.http.fault.v3.HTTPFault), the data plane of an
// Istio VirtualService's fault block: it delays requests, aborts them with
// an HTTP or gRPC status, or throttles the response body, for a random
// share of the matching requests.
//
// It follows
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/fault_filter
// field by field, with two gaps where Waygate has no counterpart: runtime
// keys (*_runtime fields) are accepted and ignored, since there is no
// runtime layer to read them from, and the active_faults gauge is kept on
// the Factory (Factory.ActiveFaults) because filters.Stats offers counters
// only.
//
// The per-route config is the same HTTPFault message, found in the route's
// typed_per_filter_config under FilterName. When present it replaces the
// listener's config for the request, as in Envoy; an empty HTTPFault (which
// istiod places in every gateway chain) injects nothing.
package fault
