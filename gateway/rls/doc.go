// Package rls is Waygate's built-in rate limit service: Envoy's
// envoy.service.ratelimit.v3.RateLimitService, answering the global rate
// limit filter of any number of gateways from counters kept in Redis, so
// that they enforce one limit together.
//
// Its configuration is the one of envoyproxy/ratelimit
// (https://github.com/envoyproxy/ratelimit#configuration): per domain, a
// tree of descriptors (key, optional value, rate_limit with unit and
// requests_per_unit, nested descriptors, shadow_mode, unlimited), so an
// existing config file works unchanged. A descriptor without a value
// matches any value and counts each value apart (a limit per client
// address).
//
// Counting is a fixed window by default, as envoyproxy/ratelimit does:
// one Redis key per descriptor and window, INCRBY and EXPIRE in one
// pipeline. The sliding window option weighs the previous window's count
// by the part of it still inside the sliding window, which smooths the
// burst a fixed window allows at its edges.
package rls
