package translate

import (
	"cmp"
	"slices"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"istio.io/api/networking/v1alpha3"
)

// translateMatch turns an HTTPMatchRequest into an Envoy RouteMatch as
// istiod's TranslateRouteMatch does
// (https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPMatchRequest):
// headers and withoutHeaders sorted by name, then :method, :authority and
// :scheme; uri exact → path, prefix → prefix, regex → safe_regex;
// ignoreUriCase turns case_sensitive off. A nil match is prefix "/".
// A JWT claim header (@request.auth.claims.<claim>) becomes a
// dynamic_metadata condition on the verified payload (see claimMatcher).
// unsupported names a condition that cannot be expressed (a claim
// header of neither claim form, or without a match).
func translateMatch(in *v1alpha3.HTTPMatchRequest) (out *routev3.RouteMatch, unsupported string) {
	out = &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
	if in == nil {
		return out, ""
	}
	for _, name := range sortedKeys(in.Headers) {
		if isClaimHeader(name) {
			if m := claimMatcher(name, in.Headers[name]); m != nil {
				out.DynamicMetadata = append(out.DynamicMetadata, m)
			} else {
				unsupported = "headers." + name
			}
			continue
		}
		out.Headers = append(out.Headers, headerMatcher(name, in.Headers[name]))
	}
	for _, name := range sortedKeys(in.WithoutHeaders) {
		if isClaimHeader(name) {
			if m := claimMatcher(name, in.WithoutHeaders[name]); m != nil {
				m.Invert = true
				out.DynamicMetadata = append(out.DynamicMetadata, m)
			} else {
				unsupported = "withoutHeaders." + name
			}
			continue
		}
		m := headerMatcher(name, in.WithoutHeaders[name])
		m.InvertMatch = true
		// Envoy rejects treat_missing_header_as_empty with present_match.
		if !isPresentMatch(in.WithoutHeaders[name]) {
			m.TreatMissingHeaderAsEmpty = true
		}
		out.Headers = append(out.Headers, m)
	}
	slices.SortStableFunc(out.Headers, func(a, b *routev3.HeaderMatcher) int { return cmp.Compare(a.Name, b.Name) })

	switch m := in.GetUri().GetMatchType().(type) {
	case *v1alpha3.StringMatch_Exact:
		out.PathSpecifier = &routev3.RouteMatch_Path{Path: m.Exact}
	case *v1alpha3.StringMatch_Prefix:
		out.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: m.Prefix}
	case *v1alpha3.StringMatch_Regex:
		out.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: m.Regex}}
	}
	out.CaseSensitive = wrapperspb.Bool(!in.IgnoreUriCase)

	if in.Method != nil {
		out.Headers = append(out.Headers, headerMatcher(":method", in.Method))
	}
	if in.Authority != nil {
		out.Headers = append(out.Headers, headerMatcher(":authority", in.Authority))
	}
	if in.Scheme != nil {
		out.Headers = append(out.Headers, headerMatcher(":scheme", in.Scheme))
	}
	for _, name := range sortedKeys(in.QueryParams) {
		q := &routev3.QueryParameterMatcher{Name: name}
		sm := in.QueryParams[name]
		if isPresentMatch(sm) {
			q.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}
		} else if em := stringMatcher(sm); em != nil {
			q.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: em}
		}
		out.QueryParameters = append(out.QueryParameters, q)
	}
	return out, unsupported
}

func headerMatcher(name string, in *v1alpha3.StringMatch) *routev3.HeaderMatcher {
	out := &routev3.HeaderMatcher{Name: name}
	if isPresentMatch(in) {
		out.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		return out
	}
	if em := stringMatcher(in); em != nil {
		out.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: em}
	}
	return out
}

// isPresentMatch reports whether a StringMatch only asks for presence:
// empty, or the regex "*" Istio documents as "any value"
// (https://github.com/istio/istio/pull/20629).
func isPresentMatch(in *v1alpha3.StringMatch) bool {
	if in == nil || in.MatchType == nil {
		return true
	}
	r, ok := in.MatchType.(*v1alpha3.StringMatch_Regex)
	return ok && r.Regex == "*"
}

// stringMatcher converts an Istio StringMatch to Envoy's StringMatcher.
func stringMatcher(in *v1alpha3.StringMatch) *matcherv3.StringMatcher {
	switch m := in.GetMatchType().(type) {
	case *v1alpha3.StringMatch_Exact:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: m.Exact}}
	case *v1alpha3.StringMatch_Prefix:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: m.Prefix}}
	case *v1alpha3.StringMatch_Regex:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{
			SafeRegex: &matcherv3.RegexMatcher{Regex: m.Regex},
		}}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
