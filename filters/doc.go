// Package filters is Waygate's HTTP filter API: the contract between the
// HTTP connection manager and every built-in or Wasm filter.
//
// The shape follows Envoy's (see
// https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/http/http_filters):
// a Factory is compiled once from the filter's typed config (an Envoy proto,
// keyed by its type URL in the registry) and creates one filter value per
// stream. A per-stream filter implements any of the phase interfaces
// (RequestHeaders, RequestBody, ResponseHeaders, ResponseBody, Done); the
// chain discovers them by type assertion so a filter pays only for the
// phases it uses, and a chain with no body filter streams bodies untouched.
//
// Streams run on their own goroutine, so a filter may block (a JWKS fetch,
// an ext_authz call, a Wasm http callout) as long as it honors
// Exchange.Context. To end an exchange early a filter calls
// Exchange.SendLocalReply and returns Stop.
//
// Adding a built-in filter is one package that calls Register from init
// with its config type URL.
package filters
