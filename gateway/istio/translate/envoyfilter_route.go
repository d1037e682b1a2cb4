package translate

import (
	"slices"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
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
	https := parts[0] == "https" && len(parts) >= 5
	if m.GetPortName() != "" && (!https || parts[2] != m.GetPortName()) {
		return false
	}
	if gw := m.GetGateway(); gw != "" {
		ns, name, ok := strings.Cut(gw, "/")
		if !ok || !https || parts[len(parts)-2] != name || parts[len(parts)-1] != ns {
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

// patchRouteConfigurations applies the route-side patches: merges into
// route configurations, then in each one the virtual host patches
// (additions last) and, in the virtual hosts there were, the route
// patches.
func patchRouteConfigurations(rcs []*routev3.RouteConfiguration, rcPatches, vhPatches, routePatches []envoyPatch) {
	for _, p := range rcPatches {
		patchList(rcs, p.op(), func(rc *routev3.RouteConfiguration) bool {
			return routeConfigMatches(rc, p.match().GetRouteConfiguration())
		}, p.value)
	}
	for _, rc := range rcs {
		in := func(p envoyPatch) bool { return routeConfigMatches(rc, p.match().GetRouteConfiguration()) }
		vhosts, added := patchExisting(rc.GetVirtualHosts(), vhPatches, in, func(p envoyPatch, vh *routev3.VirtualHost) bool {
			return vhostMatches(vh, p.match().GetRouteConfiguration().GetVhost())
		})
		for _, vh := range vhosts {
			for _, p := range routePatches {
				m := p.match().GetRouteConfiguration()
				if !in(p) || !vhostMatches(vh, m.GetVhost()) {
					continue
				}
				rm := m.GetVhost().GetRoute()
				matches := func(r *routev3.Route) bool { return routeMatches(r, rm) }
				// A route match that names no route present makes an
				// INSERT_FIRST do nothing, as in istiod.
				named := rm.GetName() != "" || rm.GetAction() != v1alpha3.EnvoyFilter_RouteConfigurationMatch_RouteMatch_ANY
				if named && p.op() == v1alpha3.EnvoyFilter_Patch_INSERT_FIRST && !slices.ContainsFunc(vh.Routes, matches) {
					continue
				}
				vh.Routes = patchList(vh.Routes, p.op(), matches, p.value)
			}
		}
		rc.VirtualHosts = append(vhosts, added...)
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

// patchClusters applies the CLUSTER patches, additions last; a removed
// EDS cluster takes its endpoints with it.
func patchClusters(cs []*clusterv3.Cluster, eps []*endpointv3.ClusterLoadAssignment, patches []envoyPatch) ([]*clusterv3.Cluster, []*endpointv3.ClusterLoadAssignment) {
	if len(patches) == 0 {
		return cs, eps
	}
	var added []*clusterv3.Cluster
	for _, p := range patches {
		matches := func(c *clusterv3.Cluster) bool { return clusterMatches(c, p.match().GetCluster()) }
		switch {
		case p.adds():
			added = append(added, cloneOf[*clusterv3.Cluster](p.value))
		case p.op() == v1alpha3.EnvoyFilter_Patch_MERGE:
			for _, c := range cs {
				if matches(c) {
					mergeCluster(c, p.value.(*clusterv3.Cluster))
				}
			}
		default:
			cs = patchList(cs, p.op(), matches, p.value)
		}
	}
	cs = append(cs, added...)
	names := map[string]bool{}
	for _, c := range cs {
		names[c.GetName()] = true
	}
	eps = slices.DeleteFunc(eps, func(e *endpointv3.ClusterLoadAssignment) bool { return !names[e.GetClusterName()] })
	return cs, eps
}

// mergeCluster merges a CLUSTER patch into c. A cluster that picks its
// transport socket per endpoint (transport_socket_matches, as every
// mesh-internal cluster under auto mTLS does) gets the patch's
// transport_socket merged into the match whose socket has the same name,
// as istiod does; when none has, the patch is not applied.
func mergeCluster(c, patch *clusterv3.Cluster) {
	ts := patch.GetTransportSocket()
	if ts == nil || len(c.GetTransportSocketMatches()) == 0 {
		mergeMessage(c, patch)
		return
	}
	found := false
	for _, m := range c.GetTransportSocketMatches() {
		if m.GetTransportSocket().GetName() == ts.GetName() {
			mergeMessage(m.TransportSocket, ts)
			found = true
		}
	}
	if !found {
		return
	}
	rest := proto.Clone(patch).(*clusterv3.Cluster)
	rest.TransportSocket = nil
	mergeMessage(c, rest)
}
