// Package headers is Envoy's header mutation filter
// (envoy.extensions.filters.http.header_mutation.v3.HeaderMutation): it
// adds, overwrites and removes request and response headers, on every
// request of a listener or, through HeaderMutationPerRoute, of a route.
//
// It follows
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/header_mutation_filter.
// Header values take the same %OPERATOR% substitutions as the access log
// and the router's request_headers_to_add (%REQ(x)%, %RESP(x)%,
// %DOWNSTREAM_REMOTE_ADDRESS%, %START_TIME%, ...), compiled once.
//
// Options is exported for other filters that add configured headers to
// their local replies (the rate limit filters do).
package headers
