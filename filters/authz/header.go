package authz

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/filters"
	shared "github.com/waygate/waygate/filters/matcher"
)

// headerMatch is a compiled envoy.config.route.v3.HeaderMatcher for RBAC's
// header permission and principal, evaluated as Envoy's
// HeaderUtility::matchHeaders does (see filters/matcher).
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/route/v3/route_components.proto#config-route-v3-headermatcher
type headerMatch struct{ shared.Header }

func compileHeaderMatch(h *routev3.HeaderMatcher) (*headerMatch, error) {
	m, err := shared.CompileHeader(h)
	if err != nil {
		return nil, err
	}
	return &headerMatch{m}, nil
}

func (m *headerMatch) match(r *filters.Request) bool { return m.Match(r) }
