// Package jwt is Envoy's JWT authentication filter
// (envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication), the data
// plane of an Istio RequestAuthentication: it finds bearer tokens in a
// request, verifies them against the issuer's JSON Web Key Set, and
// either lets the request through with the verified claims published as
// dynamic metadata (for the rbac filter's request.auth.claims) or answers
// 401 with the reason Envoy gives.
//
// It follows
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/jwt_authn_filter
// and the verification order of google/jwt_verify_lib. Signatures are
// checked with github.com/golang-jwt/jwt/v5's signing methods; parsing,
// key selection and every claim check are done here so that each failure
// maps to Envoy's status and the algorithm is always tied to the key type
// (no "none", no RS/HS confusion).
//
// Remote key sets are fetched through the gateway's clusters
// (filters.Env.Upstream), cached per provider in the Factory, refreshed in
// the background with async_fetch, and refetched once per interval when a
// token names a kid the cache lacks, so a key rotation needs no restart.
package jwt
