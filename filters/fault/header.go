package fault

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/filters/matcher"
)

// compileHeaderMatch compiles a fault's headers entry, evaluated as
// Envoy's HeaderUtility::matchHeaders does (see filters/matcher).
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/route/v3/route_components.proto#config-route-v3-headermatcher
func compileHeaderMatch(h *routev3.HeaderMatcher) (matcher.Header, error) {
	return matcher.CompileHeader(h)
}
