// Package ratelimit holds Envoy's two HTTP rate limit filters:
//
//   - the local one (envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit),
//     token buckets kept in the gateway, shared by every connection, per
//     route and per descriptor, following
//     https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/local_rate_limit_filter;
//   - the global one (envoy.extensions.filters.http.ratelimit.v3.RateLimit),
//     which asks a rate limit service over gRPC
//     (envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit) so that
//     many gateways share one limit, following
//     https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/rate_limit_filter.
//
// Both turn a request into descriptors with the route's rate_limits
// actions (remote_address, request_headers, generic_key,
// header_value_match, metadata, ...), which is why they share a package:
// see https://www.envoyproxy.io/docs/envoy/latest/configuration/other_features/global_rate_limiting#descriptors.
package ratelimit
