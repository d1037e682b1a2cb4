package cors

import (
	"fmt"
	"github.com/waygate/waygate/filters/matcher"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
)

// Policy is a compiled CorsPolicy, the value the filter finds with
// Route.PerFilterConfig(FilterName). It is immutable.
type Policy struct {
	origins       []matcher.String
	allowMethods  string
	allowHeaders  string
	exposeHeaders string
	maxAge        string

	allowCredentials          bool
	allowPrivateNetworkAccess bool
	forwardNotMatching        bool

	// enabled is nil when filter_enabled is unset: always on. shadow is
	// nil when shadow_enabled is unset: never.
	enabled *percent
	shadow  *percent
}

// Compile validates a CorsPolicy and compiles it. Errors name the field.
func Compile(pb *corsv3.CorsPolicy) (*Policy, error) {
	p := &Policy{
		allowMethods:              pb.GetAllowMethods(),
		allowHeaders:              pb.GetAllowHeaders(),
		exposeHeaders:             pb.GetExposeHeaders(),
		maxAge:                    pb.GetMaxAge(),
		allowCredentials:          pb.GetAllowCredentials().GetValue(),
		allowPrivateNetworkAccess: pb.GetAllowPrivateNetworkAccess().GetValue(),
		// Envoy forwards preflights from origins it does not allow
		// unless told otherwise.
		forwardNotMatching: true,
	}
	if f := pb.GetForwardNotMatchingPreflights(); f != nil {
		p.forwardNotMatching = f.GetValue()
	}
	for i, m := range pb.GetAllowOriginStringMatch() {
		sm, err := matcher.CompileString(m)
		if err != nil {
			return nil, fmt.Errorf("allow_origin_string_match[%d].%w", i, err)
		}
		p.origins = append(p.origins, sm)
	}
	if e := pb.GetFilterEnabled(); e != nil {
		pct, err := compilePercent(e)
		if err != nil {
			return nil, fmt.Errorf("filter_enabled.%w", err)
		}
		p.enabled = &pct
	}
	if s := pb.GetShadowEnabled(); s != nil {
		pct, err := compilePercent(s)
		if err != nil {
			return nil, fmt.Errorf("shadow_enabled.%w", err)
		}
		p.shadow = &pct
	}
	return p, nil
}

// FromRoute compiles the cors field of a route or virtual host
// (envoy.config.route.v3.CorsPolicy), for a router that hands it to the
// filter when no typed_per_filter_config policy is set, as Envoy falls
// back to it. The deprecated allow_origin and allow_origin_regex fields
// are gone from the v3 API and so not read.
func FromRoute(pb *routev3.CorsPolicy) (*Policy, error) {
	return Compile(&corsv3.CorsPolicy{
		AllowOriginStringMatch:       pb.GetAllowOriginStringMatch(),
		AllowMethods:                 pb.GetAllowMethods(),
		AllowHeaders:                 pb.GetAllowHeaders(),
		ExposeHeaders:                pb.GetExposeHeaders(),
		MaxAge:                       pb.GetMaxAge(),
		AllowCredentials:             pb.GetAllowCredentials(),
		FilterEnabled:                pb.GetFilterEnabled(),
		ShadowEnabled:                pb.GetShadowEnabled(),
		AllowPrivateNetworkAccess:    pb.GetAllowPrivateNetworkAccess(),
		ForwardNotMatchingPreflights: pb.GetForwardNotMatchingPreflights(),
	})
}

// allowed is Envoy's isOriginAllowed: a matcher that accepts "*" allows
// every origin.
func (p *Policy) allowed(origin string) bool {
	for i := range p.origins {
		if p.origins[i].Match("*") || p.origins[i].Match(origin) {
			return true
		}
	}
	return false
}

// mode draws, once per request, whether the policy is enforced, only
// evaluated for stats (shadow), or off. filter_enabled wins over
// shadow_enabled.
func (p *Policy) mode() (enforce, shadow bool) {
	if p.enabled == nil || p.enabled.draw() {
		return true, false
	}
	return false, p.shadow != nil && p.shadow.draw()
}
