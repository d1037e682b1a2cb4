// Package extauthz is Envoy's external authorization HTTP filter
// (envoy.extensions.filters.http.ext_authz.v3.ExtAuthz), the data plane
// of Istio's CUSTOM AuthorizationPolicy action: before a request goes on,
// it asks an authorization service, over HTTP or over gRPC
// (envoy.service.auth.v3.Authorization/Check), and lets the request
// through, rewrites its headers, or answers with the service's denial.
//
// It follows
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/ext_authz_filter.
// The HTTP service is reached through filters.Env.Upstream (the cluster
// of server_uri); the gRPC service through one gRPC connection per
// factory, dialed to the envoy_grpc cluster through the gateway's
// filters.Dialer, so the cluster's endpoints and load balancing of the
// current snapshot apply. Fields Waygate has no behavior for are refused
// with their path rather than ignored: an authorization filter that
// silently does less is a hole.
package extauthz
