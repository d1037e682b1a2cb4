package translate

import (
	"strings"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"istio.io/api/networking/v1alpha3"
)

// claimHeader is the header name prefix of a VirtualService match on a
// JWT claim (ingress gateways only):
// https://istio.io/latest/docs/tasks/security/authentication/jwt-route/
const claimHeader = "@request.auth.claims"

// routingClaim reads a claim header name into the claim's path, as
// istiod does: @request.auth.claims.<a>.<b> or
// @request.auth.claims[<a>][<b>] (for claim names holding dots). The
// prefix is matched without regard to case. ok is false for a name of
// neither form.
func routingClaim(name string) (claims []string, ok bool) {
	if len(name) < len(claimHeader) || !strings.EqualFold(name[:len(claimHeader)], claimHeader) {
		return nil, false
	}
	rest := name[len(claimHeader):]
	switch {
	case len(rest) > 1 && rest[0] == '.':
		return strings.Split(rest[1:], "."), true
	case len(rest) > 2 && rest[0] == '[' && rest[len(rest)-1] == ']':
		return strings.Split(rest[1:len(rest)-1], "]["), true
	}
	return nil, false
}

// isClaimHeader reports whether a match header name is of the claim
// family, well formed or not.
func isClaimHeader(name string) bool {
	return len(name) >= len(claimHeader) && strings.EqualFold(name[:len(claimHeader)], claimHeader)
}

// claimMatcher is istiod's route condition on a claim: the payload
// jwt_authn verified (envoy.filters.http.jwt_authn, key payload), at the
// claim's path, is the string or a list holding a string that m
// matches. nil when the claim name is malformed or m has no match.
func claimMatcher(name string, m *v1alpha3.StringMatch) *matcherv3.MetadataMatcher {
	claims, ok := routingClaim(name)
	sm := stringMatcher(m)
	if !ok || sm == nil {
		return nil
	}
	path := []*matcherv3.MetadataMatcher_PathSegment{{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: jwtPayloadKey}}}
	for _, c := range claims {
		path = append(path, &matcherv3.MetadataMatcher_PathSegment{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: c}})
	}
	return &matcherv3.MetadataMatcher{
		Filter: jwtFilterName,
		Path:   path,
		Value: &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_OrMatch{OrMatch: &matcherv3.OrMatcher{
			ValueMatchers: []*matcherv3.ValueMatcher{
				{MatchPattern: &matcherv3.ValueMatcher_ListMatch{ListMatch: &matcherv3.ListMatcher{
					MatchPattern: &matcherv3.ListMatcher_OneOf{OneOf: &matcherv3.ValueMatcher{
						MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: sm},
					}},
				}}},
				{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: sm}},
			},
		}}},
	}
}

// routesOnClaims reports whether some VirtualService matches on a JWT
// claim. jwt_authn then clears the route cache once it verified a token,
// so that the route is chosen again with the claims known.
func (t *translator) routesOnClaims() bool {
	for _, vs := range t.vss {
		for _, r := range vs.spec.GetHttp() {
			for _, m := range r.GetMatch() {
				for name := range m.GetHeaders() {
					if isClaimHeader(name) {
						return true
					}
				}
				for name := range m.GetWithoutHeaders() {
					if isClaimHeader(name) {
						return true
					}
				}
			}
		}
	}
	return false
}
