package translate

import (
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"istio.io/api/networking/v1alpha3"
)

// translateCORS turns a CorsPolicy into the per-route config of
// envoy.filters.http.cors, as istiod's TranslateCORSPolicy
// (https://istio.io/latest/docs/reference/config/networking/virtual-service/#CorsPolicy):
// lists are comma-joined, maxAge is whole seconds, and preflights that
// match no origin are forwarded unless unmatchedPreflights is IGNORE.
func translateCORS(in *v1alpha3.CorsPolicy) *corsv3.CorsPolicy {
	out := &corsv3.CorsPolicy{
		ForwardNotMatchingPreflights: wrapperspb.Bool(in.GetUnmatchedPreflights() != v1alpha3.CorsPolicy_IGNORE),
		FilterEnabled: &corev3.RuntimeFractionalPercent{
			DefaultValue: &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED},
		},
		AllowCredentials: in.AllowCredentials,
		AllowHeaders:     strings.Join(in.AllowHeaders, ","),
		AllowMethods:     strings.Join(in.AllowMethods, ","),
		ExposeHeaders:    strings.Join(in.ExposeHeaders, ","),
	}
	if in.AllowOrigins != nil {
		for _, o := range in.AllowOrigins {
			if m := stringMatcher(o); m != nil {
				out.AllowOriginStringMatch = append(out.AllowOriginStringMatch, m)
			}
		}
	} else {
		//nolint:staticcheck // the deprecated field is still accepted by Istio.
		for _, o := range in.AllowOrigin {
			out.AllowOriginStringMatch = append(out.AllowOriginStringMatch,
				&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: o}})
		}
	}
	if in.MaxAge != nil {
		out.MaxAge = strconv.FormatInt(in.MaxAge.GetSeconds(), 10)
	}
	return out
}
