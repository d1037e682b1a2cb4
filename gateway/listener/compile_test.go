package listener

import (
	"strings"
	"testing"

	matcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	proxyprotocolv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/proxy_protocol/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/waygate/waygate/gateway/hcm"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestCompile(t *testing.T) {
	anyOf := func(m proto.Message) *anypb.Any {
		a, err := anypb.New(m)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tcp := func(cluster string) *listenerv3.Filter {
		return &listenerv3.Filter{Name: "tcp", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: anyOf(&tcpv3.TcpProxy{
			StatPrefix: "tcp", ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: cluster},
		})}}
	}
	chain := func(fs ...*listenerv3.Filter) *listenerv3.FilterChain { return &listenerv3.FilterChain{Filters: fs} }
	listener := func(edit func(*listenerv3.Listener)) *listenerv3.Listener {
		l := &listenerv3.Listener{
			Name: "l",
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8443},
			}}},
			FilterChains: []*listenerv3.FilterChain{chain(tcp("a"))},
		}
		if edit != nil {
			edit(l)
		}
		return l
	}
	byName := func(names ...string) *listenerv3.FilterChainMatch {
		return &listenerv3.FilterChainMatch{ServerNames: names}
	}
	tests := []struct {
		name  string
		l     *listenerv3.Listener
		err   string
		check func(*testing.T, *Listener)
	}{
		{name: "tcp proxy listener", l: listener(nil), check: func(t *testing.T, l *Listener) {
			if l.Address != "0.0.0.0:8443" || l.NoBind || l.inspect {
				t.Errorf("address %s nobind %v inspect %v", l.Address, l.NoBind, l.inspect)
			}
		}},
		{name: "server names need inspection", l: listener(func(l *listenerv3.Listener) {
			l.FilterChains[0].FilterChainMatch = byName("a.example.com")
			l.ListenerFilters = []*listenerv3.ListenerFilter{{Name: "tls", ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: anyOf(&tlsinspectorv3.TlsInspector{})}}}
		}), check: func(t *testing.T, l *Listener) {
			if !l.inspect {
				t.Error("a listener matching server names does not inspect connections")
			}
		}},
		{name: "bind_to_port false", l: listener(func(l *listenerv3.Listener) { l.BindToPort = wrapperspb.Bool(false) }), check: func(t *testing.T, l *Listener) {
			if !l.NoBind {
				t.Error("bind_to_port false listener would be bound")
			}
		}},
		{name: "no name", l: listener(func(l *listenerv3.Listener) { l.Name = "" }), err: "name: must not be empty"},
		{name: "no address", l: listener(func(l *listenerv3.Listener) { l.Address = nil }), err: "address.socket_address: is required"},
		{name: "UDP", l: listener(func(l *listenerv3.Listener) { l.Address.GetSocketAddress().Protocol = corev3.SocketAddress_UDP }), err: "address.socket_address.protocol"},
		{name: "named port", l: listener(func(l *listenerv3.Listener) {
			l.Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_NamedPort{NamedPort: "https"}
		}), err: "address.socket_address.port_value"},
		{name: "no chains", l: listener(func(l *listenerv3.Listener) { l.FilterChains = nil }), err: "filter_chains: at least one filter chain is required"},
		{name: "PROXY protocol TLVs to metadata", l: listener(func(l *listenerv3.Listener) {
			l.ListenerFilters = []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.proxy_protocol", ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: anyOf(&proxyprotocolv3.ProxyProtocol{
				Rules: []*proxyprotocolv3.ProxyProtocol_Rule{{TlvType: 0xea}},
			})}}}
		}), err: `listener_filters[0] "envoy.filters.listener.proxy_protocol": typed_config.rules: TLVs to dynamic metadata are not supported`},
		{name: "PROXY protocol without a version", l: listener(func(l *listenerv3.Listener) {
			l.ListenerFilters = []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.proxy_protocol", ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: anyOf(&proxyprotocolv3.ProxyProtocol{
				DisallowedVersions: []corev3.ProxyProtocolConfig_Version{corev3.ProxyProtocolConfig_V1, corev3.ProxyProtocolConfig_V2},
			})}}}
		}), err: `typed_config.disallowed_versions: every version is disallowed`},
		{name: "unsupported listener filter", l: listener(func(l *listenerv3.Listener) {
			l.ListenerFilters = []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.local_ratelimit", ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: anyOf(&corev3.Address{})}}}
		}), err: `listener_filters[0] "envoy.filters.listener.local_ratelimit": type.googleapis.com/envoy.config.core.v3.Address is not supported`},
		{name: "chain without a terminal filter", l: listener(func(l *listenerv3.Listener) { l.FilterChains = []*listenerv3.FilterChain{chain()} }), err: "filter_chains[0]: filters: the chain needs"},
		{name: "terminal filter not last", l: listener(func(l *listenerv3.Listener) { l.FilterChains = []*listenerv3.FilterChain{chain(tcp("a"), tcp("b"))} }),
			err: `filter_chains[0]: filters[0] "tcp": a terminal filter must be the last of the chain`},
		{name: "invalid tcp proxy", l: listener(func(l *listenerv3.Listener) { l.FilterChains = []*listenerv3.FilterChain{chain(tcp(""))} }),
			err: `filter_chains[0]: filters[0] "tcp".typed_config: cluster: must not be empty`},
		{name: "bad source prefix", l: listener(func(l *listenerv3.Listener) {
			l.FilterChains[0].FilterChainMatch = &listenerv3.FilterChainMatch{SourcePrefixRanges: []*corev3.CidrRange{{AddressPrefix: "10.0.0.300"}}}
		}), err: "filter_chains[0]: filter_chain_match.source_prefix_ranges[0].address_prefix"},
		{name: "prefix length too long", l: listener(func(l *listenerv3.Listener) {
			l.FilterChains[0].FilterChainMatch = &listenerv3.FilterChainMatch{PrefixRanges: []*corev3.CidrRange{{AddressPrefix: "10.0.0.0", PrefixLen: wrapperspb.UInt32(33)}}}
		}), err: "filter_chains[0]: filter_chain_match.prefix_ranges[0].prefix_len"},
		{name: "upstream TLS context as a transport socket", l: listener(func(l *listenerv3.Listener) {
			l.FilterChains[0].TransportSocket = &corev3.TransportSocket{Name: "tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: anyOf(&tlsv3.UpstreamTlsContext{})}}
		}), err: "filter_chains[0]: transport_socket: type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext is not supported"},
		{name: "two chains with the same match", l: listener(func(l *listenerv3.Listener) {
			l.FilterChains = []*listenerv3.FilterChain{
				{FilterChainMatch: byName("a.example.com"), Filters: []*listenerv3.Filter{tcp("a")}},
				{FilterChainMatch: byName("b.example.com"), Filters: []*listenerv3.Filter{tcp("b")}},
				{Name: "again", FilterChainMatch: byName("a.example.com"), Filters: []*listenerv3.Filter{tcp("c")}},
			}
		}), err: `filter_chains[2] "again".filter_chain_match: the same as filter_chains[0]'s`},
		{name: "two chains without a match", l: listener(func(l *listenerv3.Listener) {
			l.FilterChains = []*listenerv3.FilterChain{chain(tcp("a")), {FilterChainMatch: &listenerv3.FilterChainMatch{}, Filters: []*listenerv3.Filter{tcp("b")}}}
		}), err: `filter_chains[1].filter_chain_match: the same as filter_chains[0]'s`},
		{name: "filter chain matcher", l: listener(func(l *listenerv3.Listener) { l.FilterChainMatcher = &matcherv3.Matcher{} }), err: "filter_chain_matcher: the matching API is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Compile(tt.l, Deps{HCM: &hcm.Compiler{}})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, l)
			}
		})
	}
}
