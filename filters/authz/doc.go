// Package authz is Envoy's role-based access control HTTP filter
// (envoy.extensions.filters.http.rbac.v3.RBAC), the data plane of Istio's
// ALLOW, DENY and AUDIT AuthorizationPolicies: it allows or denies each
// request by named policies of permissions (what is asked: method, path,
// host, port, SNI, metadata) and principals (who asks: peer certificate
// identity, client address, headers, the JWT claims jwt_authn wrote to
// dynamic metadata).
//
// It follows
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/rbac_filter:
// an enforced engine (rules) whose ALLOW action lets through requests a
// policy matches, DENY refuses them and LOG only marks them; and a shadow
// engine (shadow_rules) evaluated in dry-run, whose verdict is counted
// and written to dynamic metadata under envoy.filters.http.rbac, where
// Istio's istio_dry_run_* keys come from. A denied request gets 403
// "RBAC: access denied" with response code details
// rbac_access_denied_matched_policy[<policy>].
//
// Config compiles once into a tree of matchers; evaluating a request
// walks it without allocating. The xDS matcher API form (matcher,
// shadow_matcher), CEL conditions and the filter_state principal are
// refused with the field path, so a listener using them is NACKed.
package authz
