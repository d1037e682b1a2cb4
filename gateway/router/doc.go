// Package router compiles an Envoy RouteConfiguration into an immutable
// route table and matches requests against it.
//
// Compile does all parsing up front: domains go into exact, suffix-wildcard
// and prefix-wildcard maps, regexes are compiled, header names are put in
// net/http's canonical form, header values with command operators are parsed,
// typed_per_filter_config entries are built by the filters that registered
// them, and routes whose path match is a plain exact path or prefix are
// indexed so that a table of ten thousand routes is not scanned linearly.
// Match then selects a route without allocating for path, prefix and header
// routes, and the Route it returns carries everything the terminal router
// filter needs to act: the cluster (or weighted pick), rewrites, timeouts,
// retry, mirror and hash policies, redirect and direct-response actions, and
// the header mutations of every level in Envoy's order.
//
// Semantics follow Envoy's route_components.proto
// (https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/route/v3/route_components.proto)
// and the route matching overview
// (https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/http/http_routing).
// A table is safe for concurrent use; nothing in it changes after Compile.
//
// Fields Waygate accepts but does not act on are kept in the raw protos
// (Route.Config, VirtualHost.Config) for the filters that own them: rate
// limits, CORS, virtual clusters, hedge and internal redirect policies,
// tracing and decorators. Fields whose meaning Waygate cannot honor
// (connect_matcher, path_match_policy, cluster specifier plugins, vhds,
// filter_action, the vhost matcher tree) are compile errors rather than
// silently ignored routes.
package router
