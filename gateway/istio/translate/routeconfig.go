package translate

import (
	"cmp"
	"slices"
	"strconv"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// maxDirectResponseBodySize is the limit istiod sets on route
// configurations for direct_response bodies (1 MiB).
const maxDirectResponseBodySize = 1 << 20

// buildRouteConfig builds the route configuration routeName shared by
// servers, following istiod's buildGatewayHTTPRouteConfig
// (https://istio.io/latest/docs/reference/config/networking/virtual-service/):
// one virtual host "<host>:<port>" per host a server and a bound
// VirtualService have in common, whose routes are the concatenated routes
// of every such VirtualService; catch-all routes move to the end.
// httpsRedirect servers require TLS on their hosts. With no virtual host
// at all, a "blackhole:<port>" virtual host without routes answers 404.
func (t *translator) buildRouteConfig(routeName string, servers []*gatewayServer) *routev3.RouteConfiguration {
	vhosts := map[string]*routev3.VirtualHost{}
	var order []string
	// Routes of one VirtualService for one gateway are built once and
	// shared by the virtual hosts they serve.
	built := map[string][]*routev3.Route{}

	for _, gs := range servers {
		port := gs.server.Port.Number
		isTLS := gs.server.Tls != nil
		for _, vs := range t.virtualServices(gs.name) {
			common := intersectHosts(serverHostsFor(gs.server.Hosts, gs.gateway.Namespace, vs.key.Namespace), vs.hosts)
			if len(common) == 0 {
				continue
			}
			cacheKey := gs.name + "|" + vs.key.Namespace + "/" + vs.key.Name
			routes, ok := built[cacheKey]
			if !ok {
				routes = t.buildHTTPRoutes(vs, port, gs.name, isTLS)
				built[cacheKey] = routes
			}
			if len(routes) == 0 {
				continue
			}
			for _, h := range common {
				vh, ok := vhosts[h]
				if !ok {
					vh = &routev3.VirtualHost{
						Name:                       h + ":" + strconv.Itoa(int(port)),
						Domains:                    []string{h},
						IncludeRequestAttemptCount: true,
					}
					vhosts[h] = vh
					order = append(order, h)
				}
				vh.Routes = append(vh.Routes, routes...)
				if gs.server.GetTls().GetHttpsRedirect() {
					vh.RequireTls = routev3.VirtualHost_ALL
				}
			}
		}
		if gs.server.GetTls().GetHttpsRedirect() {
			for _, h := range gs.server.Hosts {
				h = stripNamespace(h)
				if vh, ok := vhosts[h]; ok {
					vh.RequireTls = routev3.VirtualHost_ALL
					continue
				}
				vhosts[h] = &routev3.VirtualHost{
					Name:                       h + ":" + strconv.Itoa(int(port)),
					Domains:                    []string{h},
					IncludeRequestAttemptCount: true,
					RequireTls:                 routev3.VirtualHost_ALL,
				}
				order = append(order, h)
			}
		}
	}

	var list []*routev3.VirtualHost
	if len(vhosts) == 0 {
		list = []*routev3.VirtualHost{{
			Name:    "blackhole:" + strconv.Itoa(int(servers[0].server.Port.Number)),
			Domains: []string{"*"},
		}}
	} else {
		for _, h := range order {
			vh := vhosts[h]
			vh.Routes = sortCatchAllLast(vh.Routes)
			list = append(list, vh)
		}
		slices.SortFunc(list, func(a, b *routev3.VirtualHost) int { return cmp.Compare(a.Name, b.Name) })
	}
	return &routev3.RouteConfiguration{
		Name:                           routeName,
		VirtualHosts:                   list,
		ValidateClusters:               wrapperspb.Bool(false),
		MaxDirectResponseBodySizeBytes: wrapperspb.UInt32(maxDirectResponseBodySize),
		IgnorePortInHostMatching:       true,
	}
}

// sortCatchAllLast moves catch-all routes after the others, keeping the
// order within each group, as istiod's SortVHostRoutes: a VirtualService
// with a catch-all must not shadow the routes of the ones after it.
func sortCatchAllLast(routes []*routev3.Route) []*routev3.Route {
	out := make([]*routev3.Route, 0, len(routes))
	var last []*routev3.Route
	for _, r := range routes {
		if isCatchAll(r) {
			last = append(last, r)
		} else {
			out = append(out, r)
		}
	}
	return append(out, last...)
}

// isCatchAll reports whether r matches every request: prefix "/" (or
// regex ".*") and no header, query or metadata condition.
func isCatchAll(r *routev3.Route) bool {
	m := r.GetMatch()
	all := false
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		all = p.Prefix == "/"
	case *routev3.RouteMatch_PathSeparatedPrefix:
		all = p.PathSeparatedPrefix == "/"
	case *routev3.RouteMatch_SafeRegex:
		all = p.SafeRegex.GetRegex() == ".*"
	}
	return all && len(m.Headers) == 0 && len(m.QueryParameters) == 0 && len(m.DynamicMetadata) == 0
}
