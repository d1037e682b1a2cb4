package translate

import (
	"slices"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"istio.io/api/networking/v1alpha3"
)

// Route-side patches (ROUTE_CONFIGURATION, VIRTUAL_HOST, HTTP_ROUTE) and
// cluster patches. A gateway's route configurations are named as in
// istiod: http.<port> for plain-text servers (shared by every Gateway on
// the port) and https.<port>.<port name>.<gateway>.<namespace> for TLS
// ones, so the port, port name and gateway of a routeConfiguration match
// are read from the name; a port name or gateway never matches an
// http.<port> configuration, which belongs to no one server.

// routeConfigMatches reports whether rc is a route configuration the
// match names.
func routeConfigMatches(rc *routev3.RouteConfiguration, m *v1alpha3.EnvoyFilter_RouteConfigurationMatch) bool {
	if m.GetName() != "" && m.GetName() != rc.GetName() {
		return false
	}
	parts := strings.Split(rc.GetName(), ".")
	if p := m.GetPortNumber(); p != 0 && (len(parts) < 2 || parts[1] != strconv.Itoa(int(p))) {
		return false
	}
	if m.GetPortName() != "" && (parts[0] != "https" || len(parts) < 3 || parts[2] != m.GetPortName()) {
		return false
	}
	if gw := m.GetGateway(); gw != "" {
		if parts[0] != "https" || len(parts) < 5 {
			return false
		}
		ns, name, ok := strings.Cut(gw, "/")
		if !ok {
			ns, name = "", gw
		}
		if parts[len(parts)-2] != name || (ns != "" && parts[len(parts)-1] != ns) {
			return false
		}
	}
	return true
}

// vhostMatches reports whether vh is a virtual host the match names.
func vhostMatches(vh *routev3.VirtualHost, m *v1alpha3.EnvoyFilter_RouteConfigurationMatch_VirtualHostMatch) bool {
	if m.GetName() != "" && m.GetName() != vh.GetName() {
		return false
	}
	if d := m.GetDomainName(); d != "" && !slices.Contains(vh.GetDomains(), d) {
		return false
	}
	return true
}

// routeMatches reports whether r is a route the match names.
func routeMatches(r *routev3.Route, m *v1alpha3.EnvoyFilter_RouteConfigurationMatch_RouteMatch) bool {
	if m.GetName() != "" && m.GetName() != r.GetName() {
		return false
	}
	switch m.GetAction() {
	case v1alpha3.EnvoyFilter_RouteConfigurationMatch_RouteMatch_ROUTE:
		return r.GetRoute() != nil
	case v1alpha3.EnvoyFilter_RouteConfigurationMatch_RouteMatch_REDIRECT:
		return r.GetRedirect() != nil
	case v1alpha3.EnvoyFilter_RouteConfigurationMatch_RouteMatch_DIRECT_RESPONSE:
		return r.GetDirectResponse() != nil
	}
	return true
}

// patchRouteConfigurations applies a ROUTE_CONFIGURATION patch (MERGE).
func patchRouteConfigurations(rcs []*routev3.RouteConfiguration, p envoyPatch) {
	m := p.match().GetRouteConfiguration()
	patchList(rcs, p.op(), func(rc *routev3.RouteConfiguration) bool { return routeConfigMatches(rc, m) }, p.value)
}

// patchVirtualHosts applies a VIRTUAL_HOST patch: ADD appends the host
// to every matching configuration, REMOVE and MERGE act on matching
// hosts.
func patchVirtualHosts(rcs []*routev3.RouteConfiguration, p envoyPatch) {
	m := p.match().GetRouteConfiguration()
	for _, rc := range rcs {
		if routeConfigMatches(rc, m) {
			rc.VirtualHosts = patchList(rc.VirtualHosts, p.op(), func(vh *routev3.VirtualHost) bool { return vhostMatches(vh, m.GetVhost()) }, p.value)
		}
	}
}

// patchRoutes applies an HTTP_ROUTE patch to the routes of every
// matching virtual host, relative to the first route the match names.
func patchRoutes(rcs []*routev3.RouteConfiguration, p envoyPatch) {
	m := p.match().GetRouteConfiguration()
	for _, rc := range rcs {
		if !routeConfigMatches(rc, m) {
			continue
		}
		for _, vh := range rc.GetVirtualHosts() {
			if vhostMatches(vh, m.GetVhost()) {
				rm := m.GetVhost().GetRoute()
				named := rm.GetName() != "" || rm.GetAction() != v1alpha3.EnvoyFilter_RouteConfigurationMatch_RouteMatch_ANY
				vh.Routes = patchList(vh.Routes, relativeOp(p.op(), named), func(r *routev3.Route) bool { return routeMatches(r, rm) }, p.value)
			}
		}
	}
}

// clusterMatches reports whether c is a cluster the match names; an
// outbound cluster's port, subset and service are read from its name,
// outbound|<port>|<subset>|<host>.
func clusterMatches(c *clusterv3.Cluster, m *v1alpha3.EnvoyFilter_ClusterMatch) bool {
	if m.GetName() != "" && m.GetName() != c.GetName() {
		return false
	}
	if m.GetPortNumber() == 0 && m.GetSubset() == "" && m.GetService() == "" {
		return true
	}
	parts := strings.Split(c.GetName(), "|")
	if len(parts) != 4 {
		return false
	}
	if p := m.GetPortNumber(); p != 0 && parts[1] != strconv.Itoa(int(p)) {
		return false
	}
	if s := m.GetSubset(); s != "" && parts[2] != s {
		return false
	}
	if s := m.GetService(); s != "" && parts[3] != s {
		return false
	}
	return true
}

// patchClusters applies a CLUSTER patch; a removed EDS cluster takes its
// endpoints with it.
func patchClusters(cs []*clusterv3.Cluster, eps []*endpointv3.ClusterLoadAssignment, p envoyPatch) ([]*clusterv3.Cluster, []*endpointv3.ClusterLoadAssignment) {
	m := p.match().GetCluster()
	cs = patchList(cs, p.op(), func(c *clusterv3.Cluster) bool { return clusterMatches(c, m) }, p.value)
	if p.op() == v1alpha3.EnvoyFilter_Patch_REMOVE {
		names := map[string]bool{}
		for _, c := range cs {
			names[c.GetName()] = true
		}
		eps = slices.DeleteFunc(eps, func(e *endpointv3.ClusterLoadAssignment) bool { return !names[e.GetClusterName()] })
	}
	return cs, eps
}
