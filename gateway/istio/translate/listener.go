package translate

import (
	"cmp"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// buildListenersAndRoutes builds one listener "0.0.0.0_<port>" per
// Gateway port, as istiod's buildGatewayListeners
// (https://istio.io/latest/docs/reference/config/networking/gateway/),
// with the route configurations its HTTP connection managers name and
// the secrets its TLS contexts read from files.
func (t *translator) buildListenersAndRoutes(gw *mergedGateway) ([]*listenerv3.Listener, []*routev3.RouteConfiguration, []*tlsv3.Secret) {
	var listeners []*listenerv3.Listener
	var routes []*routev3.RouteConfiguration
	var secrets []*tlsv3.Secret
	seenSecret := map[string]bool{}
	routeNames := map[string]bool{}

	for _, ps := range gw.ports {
		// As istiod: a server's bind is the listener's address and
		// name, and suffixes its route configuration.
		addr := cmp.Or(ps.bind, "0.0.0.0")
		name := addr + "_" + strconv.Itoa(int(ps.port))
		statPrefix := "outbound_" + name
		var chains []*listenerv3.FilterChain
		if ps.http {
			routeName := "http." + strconv.Itoa(int(ps.port))
			if ps.bind != "" {
				routeName += "." + ps.bind
			}
			chains = append(chains, &listenerv3.FilterChain{
				Filters: []*listenerv3.Filter{hcmNetworkFilter(t.connectionManager(statPrefix, routeName))},
			})
			routes = append(routes, t.buildRouteConfig(routeName, ps.servers))
		} else {
			taken := map[string]bool{}
			plainTaken := false // PeerAuthentication's plain-text chain (peerauthn.go)
			for _, gs := range ps.servers {
				switch {
				case isTLSTerminatedHTTPS(gs.server):
					routeName := httpsRouteName(gs)
					if routeNames[routeName] {
						t.warn(gs.gateway, gs.field+".port.name", "route %q already exists: HTTPS servers on one port need distinct port names", routeName)
						continue
					}
					if !t.claimSNI(gs, taken) {
						continue
					}
					routeNames[routeName] = true
					prefix := gs.server.Name
					if prefix == "" {
						prefix = statPrefix
					}
					ctx, secs := t.downstreamTLS(gs, []string{"h2", "http/1.1"})
					for _, s := range secs {
						if !seenSecret[s.Name] {
							seenSecret[s.Name] = true
							secrets = append(secrets, s)
						}
					}
					chains = append(chains, t.istioMutualChains(gs, &listenerv3.FilterChain{
						FilterChainMatch: sniMatch(gs),
						Filters:          []*listenerv3.Filter{hcmNetworkFilter(t.connectionManager(prefix, routeName))},
						TransportSocket:  downstreamSocket(ctx),
					}, &plainTaken)...)
					routes = append(routes, t.buildRouteConfig(routeName, []*gatewayServer{gs}))
				case gs.server.Tls == nil:
					filters := t.tcpRouteFilters(gs)
					if len(filters) == 0 {
						t.warn(gs.gateway, gs.field, "no VirtualService tcp route matches this server; it gets no filter chain")
						continue
					}
					chains = append(chains, &listenerv3.FilterChain{Filters: filters})
				case isPassthrough(gs.server):
					if isAutoPassthrough(gs.server) {
						if !t.claimSNI(gs, taken) {
							continue
						}
						chains = append(chains, autoPassthroughChain(gs, statPrefix))
						continue
					}
					tlsChains := t.tlsRouteChains(gs, taken)
					if len(tlsChains) == 0 {
						t.warn(gs.gateway, gs.field, "no VirtualService tls route matches this server; it gets no filter chain")
					}
					chains = append(chains, tlsChains...)
				default:
					if !t.claimSNI(gs, taken) {
						continue
					}
					filters := t.tcpRouteFilters(gs)
					if len(filters) == 0 {
						t.warn(gs.gateway, gs.field, "no VirtualService tcp route matches this server; it gets no filter chain")
						continue
					}
					ctx, secs := t.downstreamTLS(gs, nil)
					for _, s := range secs {
						if !seenSecret[s.Name] {
							seenSecret[s.Name] = true
							secrets = append(secrets, s)
						}
					}
					chains = append(chains, t.istioMutualChains(gs, &listenerv3.FilterChain{
						FilterChainMatch: sniMatch(gs),
						Filters:          filters,
						TransportSocket:  downstreamSocket(ctx),
					}, &plainTaken)...)
				}
			}
		}
		if len(chains) == 0 {
			continue
		}
		for _, c := range chains {
			c.TransportSocketConnectTimeout = durationpb.New(15e9)
		}
		l := &listenerv3.Listener{
			Name: name,
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address:       addr,
				PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: ps.port},
			}}},
			FilterChains:     chains,
			TrafficDirection: corev3.TrafficDirection_OUTBOUND,
		}
		if pp := t.proxyProtocolFilter(); pp != nil {
			// The PROXY protocol header comes before anything else.
			l.ListenerFilters = append(l.ListenerFilters, pp)
		}
		if needsTLSInspector(chains) {
			// Matching on SNI or TLS needs the ClientHello.
			l.ListenerFilters = append(l.ListenerFilters, &listenerv3.ListenerFilter{
				Name:       "envoy.filters.listener.tls_inspector",
				ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspectorv3.TlsInspector{})},
			})
		}
		listeners = append(listeners, l)
	}
	return listeners, routes, secrets
}

// sniMatch matches the SNI names of a TLS server, or every connection
// when one of its hosts is "*".
func sniMatch(gs *gatewayServer) *listenerv3.FilterChainMatch {
	names := sniHosts(gs.server)
	if len(names) == 0 {
		return nil
	}
	return &listenerv3.FilterChainMatch{ServerNames: names}
}

func downstreamSocket(ctx *tlsv3.DownstreamTlsContext) *corev3.TransportSocket {
	return &corev3.TransportSocket{
		Name:       tlsTransportSocket,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)},
	}
}

func needsTLSInspector(chains []*listenerv3.FilterChain) bool {
	for _, c := range chains {
		if m := c.GetFilterChainMatch(); len(m.GetServerNames()) > 0 || m.GetTransportProtocol() != "" {
			return true
		}
	}
	return false
}

// claimSNI reserves the SNI names of a TLS server on its port. Envoy
// rejects a listener whose filter chains match the same names, so a
// server repeating a name already served on the port is left out, as
// istiod drops duplicate servers. The empty name stands for the chain
// without SNI match.
func (t *translator) claimSNI(gs *gatewayServer, taken map[string]bool) bool {
	names := sniHosts(gs.server)
	if len(names) == 0 {
		names = []string{""}
	}
	for _, n := range names {
		if taken[n] {
			shown := n
			if shown == "" {
				shown = "*"
			}
			t.warn(gs.gateway, gs.field+".hosts", "host %q is already served on port %d; the server is left out", shown, gs.server.Port.Number)
			return false
		}
	}
	for _, n := range names {
		taken[n] = true
	}
	return true
}
