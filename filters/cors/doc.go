// Package cors is Envoy's CORS filter
// (envoy.extensions.filters.http.cors.v3.Cors), the data plane of an Istio
// VirtualService's corsPolicy: it answers preflight requests for allowed
// origins and adds the access-control-* headers to the responses of
// cross-origin requests.
//
// It follows
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/cors_filter
// and Envoy's cors_filter.cc. The filter config (Cors) carries nothing; the
// policy is the route's typed_per_filter_config entry under FilterName, a
// CorsPolicy, or a route-level CorsPolicy the router hands over through
// FromRoute. Where Envoy merges policies field by field across route,
// virtual host and route configuration, Waygate uses the most specific one
// whole, since Route.PerFilterConfig yields one value.
package cors
