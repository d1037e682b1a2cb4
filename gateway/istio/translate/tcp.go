package translate

import (
	"fmt"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"istio.io/api/networking/v1alpha3"
)

const tcpProxyFilter = "envoy.filters.network.tcp_proxy"

// tcpRouteFilters returns the tcp_proxy of the first tcp rule of a bound
// VirtualService that matches server, as istiod's
// buildGatewayNetworkFiltersFromTCPRoutes
// (https://istio.io/latest/docs/reference/config/networking/virtual-service/#TCPRoute):
// for TCP the hosts only need to overlap; the first matching rule wins.
func (t *translator) tcpRouteFilters(gs *gatewayServer) []*listenerv3.Filter {
	hosts := gs.server.Hosts
	for _, vs := range t.virtualServices(gs.name) {
		if len(intersectHosts(serverHostsFor(hosts, gs.gateway.Namespace, vs.key.Namespace), vs.hosts)) == 0 {
			continue
		}
		for i, rule := range vs.spec.Tcp {
			if !l4Matches(rule.Match, gs, vs.key.Namespace) || len(rule.Route) == 0 {
				continue
			}
			return []*listenerv3.Filter{t.tcpProxy(vs, fmt.Sprintf("spec.tcp[%d]", i), rule.Route, gs.server.Port.Number)}
		}
	}
	return nil
}

// tlsRouteChains returns one filter chain per tls rule match of the
// VirtualServices bound to a PASSTHROUGH server: the match's SNI hosts
// select a tcp_proxy, as istiod's buildGatewayNetworkFiltersFromTLSRoutes.
// A SNI host already taken on the port is skipped: Envoy rejects two
// filter chains with the same match.
func (t *translator) tlsRouteChains(gs *gatewayServer, taken map[string]bool) []*listenerv3.FilterChain {
	var out []*listenerv3.FilterChain
	for _, vs := range t.virtualServices(gs.name) {
		if len(intersectHosts(serverHostsFor(gs.server.Hosts, gs.gateway.Namespace, vs.key.Namespace), vs.hosts)) == 0 {
			continue
		}
		for i, rule := range vs.spec.Tls {
			if len(rule.Route) == 0 {
				continue
			}
			for j, m := range rule.Match {
				if !l4SingleMatch(m.Port, m.Gateways, gs, vs.key.Namespace) {
					continue
				}
				field := fmt.Sprintf("spec.tls[%d].match[%d].sniHosts", i, j)
				dup := false
				for _, h := range m.SniHosts {
					if taken[h] {
						t.warn(vs.key, field, "SNI host %q is already routed on port %d; the match is left out", h, gs.server.Port.Number)
						dup = true
					}
				}
				if dup {
					continue
				}
				for _, h := range m.SniHosts {
					taken[h] = true
				}
				out = append(out, &listenerv3.FilterChain{
					FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: m.SniHosts},
					Filters:          []*listenerv3.Filter{t.tcpProxy(vs, fmt.Sprintf("spec.tls[%d]", i), rule.Route, gs.server.Port.Number)},
				})
			}
		}
	}
	return out
}

// l4Matches reports whether any of a tcp rule's matches applies to the
// server (a rule without matches applies everywhere); gateway names are
// short names in the VirtualService's namespace.
func l4Matches(ms []*v1alpha3.L4MatchAttributes, gs *gatewayServer, vsNamespace string) bool {
	if len(ms) == 0 {
		return true
	}
	for _, m := range ms {
		if l4SingleMatch(m.Port, m.Gateways, gs, vsNamespace) {
			return true
		}
	}
	return false
}

func l4SingleMatch(port uint32, gateways []string, gs *gatewayServer, vsNamespace string) bool {
	if port != 0 && port != gs.server.Port.Number {
		return false
	}
	if len(gateways) == 0 {
		return true
	}
	for _, g := range gateways {
		if resolveGatewayName(g, vsNamespace) == gs.name {
			return true
		}
	}
	return false
}

// tcpProxy forwards connections to one destination, or splits them by
// weight (https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto).
// The stat prefix is the cluster for one destination and
// "<virtual service>.<namespace>" for several, as istiod names them.
func (t *translator) tcpProxy(vs *virtualService, field string, routes []*v1alpha3.RouteDestination, port uint32) *listenerv3.Filter {
	p := &tcpproxyv3.TcpProxy{}
	if len(routes) == 1 {
		c := t.destinationCluster(vs, field+".route[0]", routes[0].Destination, port)
		p.StatPrefix = c
		p.ClusterSpecifier = &tcpproxyv3.TcpProxy_Cluster{Cluster: c}
	} else {
		wc := &tcpproxyv3.TcpProxy_WeightedCluster{}
		for i, r := range routes {
			if r.Weight <= 0 {
				continue
			}
			wc.Clusters = append(wc.Clusters, &tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight{
				Name:   t.destinationCluster(vs, fmt.Sprintf("%s.route[%d]", field, i), r.Destination, port),
				Weight: uint32(r.Weight),
			})
		}
		if len(wc.Clusters) == 0 {
			t.warn(vs.key, field+".route", "no destination has a weight; connections are closed")
			wc.Clusters = append(wc.Clusters, &tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight{Name: blackHoleCluster, Weight: 1})
		}
		p.StatPrefix = vs.key.Name + "." + vs.key.Namespace
		p.ClusterSpecifier = &tcpproxyv3.TcpProxy_WeightedClusters{WeightedClusters: wc}
	}
	return &listenerv3.Filter{Name: tcpProxyFilter, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(p)}}
}
