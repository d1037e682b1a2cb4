package translate

import (
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	sniclusterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/sni_cluster/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"
	"istio.io/api/networking/v1alpha3"
)

// AUTO_PASSTHROUGH, the TLS mode of an Istio east-west gateway
// (https://istio.io/latest/docs/reference/config/networking/gateway/#ServerTLSSettings-TLSmode):
// the gateway neither terminates the mesh's mTLS nor needs a
// VirtualService. A client in another network names the destination in
// its SNI, outbound_.<port>_.<subset>_.<host>, and the gateway forwards
// the connection to the cluster of that name. As istiod does, the server
// gets a chain of the sni_cluster filter and a tcp_proxy, and the proxy
// gets an "SNI-DNAT" copy of each outbound cluster under that name,
// without the cluster's own TLS: the client's mTLS passes through.

func isAutoPassthrough(s *v1alpha3.Server) bool {
	return s.GetTls().GetMode() == v1alpha3.ServerTLSSettings_AUTO_PASSTHROUGH
}

// autoPassthrough reports whether some server of the gateway is
// AUTO_PASSTHROUGH, for which the SNI-DNAT clusters are made.
func (m *mergedGateway) autoPassthrough() bool {
	for _, ps := range m.ports {
		for _, gs := range ps.servers {
			if isAutoPassthrough(gs.server) {
				return true
			}
		}
	}
	return false
}

// autoPassthroughChain is an AUTO_PASSTHROUGH server's filter chain:
// TLS connections whose SNI matches the server's hosts go to the
// cluster their SNI names.
func autoPassthroughChain(gs *gatewayServer, statPrefix string) *listenerv3.FilterChain {
	match := &listenerv3.FilterChainMatch{TransportProtocol: "tls", ServerNames: sniHosts(gs.server)}
	return &listenerv3.FilterChain{
		FilterChainMatch: match,
		Filters: []*listenerv3.Filter{
			{Name: "envoy.filters.network.sni_cluster", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(&sniclusterv3.SniCluster{})}},
			{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(&tcpproxyv3.TcpProxy{
				StatPrefix: statPrefix,
				// The SNI replaces it; a connection without one goes
				// nowhere.
				ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: blackHoleCluster},
			})}},
		},
	}
}

// sniDNATName is the SNI-DNAT name of outbound cluster
// outbound|<port>|<subset>|<host>.
func sniDNATName(outbound string) (string, bool) {
	parts := strings.SplitN(outbound, "|", 4)
	if len(parts) != 4 || parts[0] != "outbound" {
		return "", false
	}
	return "outbound_." + parts[1] + "_." + parts[2] + "_." + parts[3], true
}

// sniDNATClusters are the SNI-DNAT copies of the outbound clusters and
// their endpoints.
func sniDNATClusters(clusters []*clusterv3.Cluster, endpoints []*endpointv3.ClusterLoadAssignment) ([]*clusterv3.Cluster, []*endpointv3.ClusterLoadAssignment) {
	byName := map[string]*endpointv3.ClusterLoadAssignment{}
	for _, e := range endpoints {
		byName[e.GetClusterName()] = e
	}
	var cs []*clusterv3.Cluster
	var es []*endpointv3.ClusterLoadAssignment
	for _, c := range clusters {
		name, ok := sniDNATName(c.GetName())
		if !ok {
			continue
		}
		d := proto.Clone(c).(*clusterv3.Cluster)
		d.Name = name
		d.TransportSocket, d.TransportSocketMatches = nil, nil
		if d.GetLoadAssignment() != nil {
			d.LoadAssignment.ClusterName = name
		}
		if eds := d.GetEdsClusterConfig(); eds != nil {
			eds.ServiceName = name
			if e := byName[c.GetName()]; e != nil {
				ce := proto.Clone(e).(*endpointv3.ClusterLoadAssignment)
				ce.ClusterName = name
				// The copy's endpoints are reached as the client's mTLS
				// says, not by the outbound cluster's socket matches.
				for _, l := range ce.GetEndpoints() {
					for _, lb := range l.GetLbEndpoints() {
						delete(lb.GetMetadata().GetFilterMetadata(), "envoy.transport_socket_match")
					}
				}
				es = append(es, ce)
			}
		}
		cs = append(cs, d)
	}
	return cs, es
}
