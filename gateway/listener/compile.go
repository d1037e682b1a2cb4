// Package listener binds the sockets of Envoy Listener resources, picks a
// filter chain for each connection (SNI, ALPN, transport protocol,
// addresses), terminates TLS, and hands the connection to the HTTP
// connection manager or the TCP proxy.
//
// See https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/listeners/listeners
package listener

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	sniclusterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/sni_cluster/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/tcpproxy"
	"github.com/waygate/waygate/gateway/tlsconfig"
	"google.golang.org/protobuf/proto"
)

// Listener is a compiled Listener resource.
type Listener struct {
	Name    string
	Address string
	Proto   *listenerv3.Listener
	// NoBind is bind_to_port false: the listener is accepted but has
	// no socket of its own.
	NoBind bool

	chains       []*chain
	defaultChain *chain
	inspect      bool
	// proxyProtocol reads a PROXY protocol header first, when the
	// listener has the proxy_protocol listener filter.
	proxyProtocol *proxyProtocol
	// sniffHTTP reads plaintext request lines for application protocol
	// matching: the listener has an http_inspector and a chain that
	// matches on application_protocols.
	sniffHTTP bool
	// inspectTimeout is listener_filters_timeout, -1 when unset (the
	// manager's default applies); continueOnTimeout is
	// continue_on_listener_filters_timeout.
	inspectTimeout    time.Duration
	continueOnTimeout bool
	// key identifies the listener's content: equal keys mean the config
	// did not change and open connections keep going untouched.
	key string
	// secretsKey identifies the SDS secrets the listener was compiled
	// with. A rotated secret changes it but not key: new handshakes
	// must use the new certificate, and open connections need not drain.
	secretsKey string
}

// chain is one compiled filter chain.
type chain struct {
	name  string
	match chainMatch
	tls   *tls.Config
	// handshakeTimeout is transport_socket_connect_timeout; 0 if unset.
	handshakeTimeout time.Duration
	http             *hcm.Config
	tcp              *tcpproxy.Config
	// network are the network filters before the tcp proxy, in order.
	network []filters.NetworkFactory
	// localURIs are the URI SANs of the chain's certificate, for
	// x-forwarded-client-cert.
	localURIs []string
}

// certURIs are the URI SANs of the first certificate cfg presents.
func certURIs(cfg *tls.Config) []string {
	if cfg == nil || len(cfg.Certificates) == 0 || len(cfg.Certificates[0].Certificate) == 0 {
		return nil
	}
	leaf := cfg.Certificates[0].Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cfg.Certificates[0].Certificate[0]); err != nil {
			return nil
		}
	}
	var out []string
	for _, u := range leaf.URIs {
		out = append(out, u.String())
	}
	return out
}

// Deps are what compiling a listener needs from the gateway.
type Deps struct {
	HCM     *hcm.Compiler
	Secrets tlsconfig.Secrets
	Log     *slog.Logger
}

// Compile checks and compiles a Listener. Errors name the field path.
func Compile(l *listenerv3.Listener, d Deps) (*Listener, error) {
	out := &Listener{Name: l.GetName(), Proto: l}
	if out.Name == "" {
		return nil, fmt.Errorf("name: must not be empty")
	}
	sa := l.GetAddress().GetSocketAddress()
	if sa == nil {
		return nil, fmt.Errorf("address.socket_address: is required")
	}
	if sa.GetProtocol() == corev3.SocketAddress_UDP {
		return nil, fmt.Errorf("address.socket_address.protocol: UDP listeners are not supported yet")
	}
	port, ok := sa.GetPortSpecifier().(*corev3.SocketAddress_PortValue)
	if !ok || port.PortValue > 65535 {
		return nil, fmt.Errorf("address.socket_address.port_value: a port from 0 to 65535 is required")
	}
	out.Address = net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(port.PortValue)))
	out.NoBind = l.GetBindToPort() != nil && !l.GetBindToPort().GetValue()
	out.inspectTimeout = -1
	if d := l.GetListenerFiltersTimeout(); d != nil {
		if err := d.CheckValid(); err != nil || d.AsDuration() < 0 {
			return nil, fmt.Errorf("listener_filters_timeout: a duration of 0 (none) or more is required")
		}
		out.inspectTimeout = d.AsDuration()
	}
	out.continueOnTimeout = l.GetContinueOnListenerFiltersTimeout()
	if l.GetFilterChainMatcher() != nil {
		// Ignoring it would route connections by the chains'
		// filter_chain_match, which Envoy ignores when it is set.
		return nil, fmt.Errorf("filter_chain_matcher: the matching API is not supported; select chains with filter_chains[].filter_chain_match")
	}
	httpInspector := false
	for i, lf := range l.GetListenerFilters() {
		typeURL, _, err := hcm.Unpack(lf.GetTypedConfig())
		if err != nil {
			return nil, fmt.Errorf("listener_filters[%d]: %v", i, err)
		}
		switch typeURL {
		case "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector":
			// Connections are inspected whenever a chain needs it.
		case "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector":
			// Plaintext has no ALPN; only this filter makes one up.
			httpInspector = true
		case "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst":
			// A gateway accepts on the address it listens on.
		case proxyProtocolType:
			pp, err := compileProxyProtocol(lf)
			if err != nil {
				return nil, fmt.Errorf("listener_filters[%d] %q: %w", i, lf.GetName(), err)
			}
			out.proxyProtocol = pp
		default:
			if _, noop := filters.LookupNoop(typeURL); noop {
				continue
			}
			return nil, fmt.Errorf("listener_filters[%d] %q: %s is not supported", i, lf.GetName(), typeURL)
		}
	}
	seen := map[string]int{}
	for i, fc := range l.GetFilterChains() {
		c, err := compileChain(fc, d)
		if err != nil {
			return nil, fmt.Errorf("filter_chains[%d]%s: %w", i, nameSuffix(fc.GetName()), err)
		}
		// Envoy rejects a listener whose chains share their matching
		// rules: all but one could never be chosen.
		mk, err := proto.MarshalOptions{Deterministic: true}.Marshal(fc.GetFilterChainMatch())
		if err != nil {
			return nil, err
		}
		if j, dup := seen[string(mk)]; dup {
			return nil, fmt.Errorf("filter_chains[%d]%s.filter_chain_match: the same as filter_chains[%d]'s; each chain needs its own matching rules", i, nameSuffix(fc.GetName()), j)
		}
		seen[string(mk)] = i
		out.chains = append(out.chains, c)
		if c.match.needsInspection() || c.tls != nil {
			out.inspect = true
		}
		if httpInspector && len(c.match.alpn) > 0 {
			out.sniffHTTP = true
		}
	}
	if dfc := l.GetDefaultFilterChain(); dfc != nil {
		c, err := compileChain(dfc, d)
		if err != nil {
			return nil, fmt.Errorf("default_filter_chain: %w", err)
		}
		out.defaultChain = c
		if c.tls != nil {
			out.inspect = true
		}
	}
	if len(out.chains) == 0 && out.defaultChain == nil {
		return nil, fmt.Errorf("filter_chains: at least one filter chain is required")
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(l)
	if err != nil {
		return nil, err
	}
	out.key = string(b)
	if d.Secrets != nil {
		var sk []byte
		for _, n := range SecretNames(l) {
			sb, err := proto.MarshalOptions{Deterministic: true}.Marshal(d.Secrets.Secret(n))
			if err != nil {
				return nil, err
			}
			sk = append(append(append(sk, n...), 0), sb...)
		}
		out.secretsKey = string(sk)
	}
	return out, nil
}

func nameSuffix(n string) string {
	if n == "" {
		return ""
	}
	return " " + strconv.Quote(n)
}

func compileChain(fc *listenerv3.FilterChain, d Deps) (*chain, error) {
	c := &chain{name: fc.GetName()}
	m := fc.GetFilterChainMatch()
	c.match.dstPort = m.GetDestinationPort().GetValue()
	var err error
	if c.match.dstPrefixes, err = prefixes(m.GetPrefixRanges(), "filter_chain_match.prefix_ranges"); err != nil {
		return nil, err
	}
	if c.match.direct, err = prefixes(m.GetDirectSourcePrefixRanges(), "filter_chain_match.direct_source_prefix_ranges"); err != nil {
		return nil, err
	}
	if c.match.srcPrefixes, err = prefixes(m.GetSourcePrefixRanges(), "filter_chain_match.source_prefix_ranges"); err != nil {
		return nil, err
	}
	c.match.serverNames = m.GetServerNames()
	c.match.transport = m.GetTransportProtocol()
	c.match.alpn = m.GetApplicationProtocols()
	c.match.sourceType = m.GetSourceType()
	c.match.srcPorts = m.GetSourcePorts()

	if d := fc.GetTransportSocketConnectTimeout(); d != nil {
		if err := d.CheckValid(); err != nil || d.AsDuration() < 0 {
			return nil, fmt.Errorf("transport_socket_connect_timeout: a duration of 0 (none) or more is required")
		}
		c.handshakeTimeout = d.AsDuration()
	}
	if ts := fc.GetTransportSocket(); ts != nil {
		typeURL, msg, err := hcm.Unpack(ts.GetTypedConfig())
		if err != nil {
			return nil, fmt.Errorf("transport_socket: %v", err)
		}
		switch t := msg.(type) {
		case *tlsv3.DownstreamTlsContext:
			if c.tls, err = tlsconfig.Downstream(t, d.Secrets); err != nil {
				return nil, fmt.Errorf("transport_socket.typed_config: %w", err)
			}
			c.localURIs = certURIs(c.tls)
		default:
			if typeURL != "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer" {
				return nil, fmt.Errorf("transport_socket: %s is not supported", typeURL)
			}
		}
	}

	fs := fc.GetFilters()
	sniCluster := false
	for i, f := range fs {
		path := fmt.Sprintf("filters[%d] %q", i, f.GetName())
		if cd := f.GetConfigDiscovery(); cd != nil {
			// A network filter configured through ECDS (a NETWORK
			// WasmPlugin from istiod); it warms the listener until
			// its config arrives.
			nf, err := d.HCM.DiscoveredNetwork(f.GetName(), cd, func(typeURL string, msg proto.Message) (filters.NetworkFactory, error) {
				return compileNetworkFilter(f.GetName(), typeURL, msg, d)
			})
			if err != nil {
				return nil, fmt.Errorf("%s.config_discovery: %w", path, err)
			}
			c.network = append(c.network, nf)
			continue
		}
		typeURL, msg, err := hcm.Unpack(f.GetTypedConfig())
		if err != nil {
			return nil, fmt.Errorf("%s.typed_config: %v", path, err)
		}
		if _, noop := filters.LookupNoop(typeURL); noop {
			continue
		}
		terminal := false
		switch t := msg.(type) {
		case *sniclusterv3.SniCluster:
			// Not a filter of its own: the chain's tcp_proxy takes the
			// cluster its SNI names (tcpproxy.Config.WithSNICluster).
			sniCluster = true
			continue
		case *hcmv3.HttpConnectionManager:
			if c.http, err = d.HCM.Compile(t); err != nil {
				return nil, fmt.Errorf("%s.typed_config: %w", path, err)
			}
			terminal = true
		case *tcpv3.TcpProxy:
			if c.tcp, err = tcpproxy.Compile(t, d.Log); err != nil {
				return nil, fmt.Errorf("%s.typed_config: %w", path, err)
			}
			terminal = true
		default:
			nf, err := compileNetworkFilter(f.GetName(), typeURL, msg, d)
			if err != nil {
				return nil, fmt.Errorf("%s.typed_config: %w", path, err)
			}
			c.network = append(c.network, nf)
		}
		if terminal && i != len(fs)-1 {
			return nil, fmt.Errorf("%s: a terminal filter must be the last of the chain", path)
		}
	}
	if c.http == nil && c.tcp == nil {
		return nil, fmt.Errorf("filters: the chain needs an http_connection_manager or tcp_proxy filter")
	}
	if sniCluster {
		if c.tcp == nil {
			return nil, fmt.Errorf("filters: envoy.filters.network.sni_cluster needs a tcp_proxy after it")
		}
		c.tcp = c.tcp.WithSNICluster()
	}
	return c, nil
}

func prefixes(rs []*corev3.CidrRange, path string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, r := range rs {
		a, err := netip.ParseAddr(r.GetAddressPrefix())
		if err != nil {
			return nil, fmt.Errorf("%s[%d].address_prefix: %v", path, i, err)
		}
		bits := a.BitLen()
		if r.GetPrefixLen() != nil {
			bits = int(r.GetPrefixLen().GetValue())
		}
		p, err := a.Prefix(bits)
		if err != nil {
			return nil, fmt.Errorf("%s[%d].prefix_len: %v", path, i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// RouteNames lists the RDS route configurations the listener's HTTP
// chains use, sorted.
func RouteNames(l *Listener) []string {
	seen := map[string]bool{}
	for _, c := range append(append([]*chain(nil), l.chains...), l.defaultChain) {
		if c != nil && c.http != nil && c.http.RDSName != "" {
			seen[c.http.RDSName] = true
		}
	}
	return sortedKeys(seen)
}

// SecretNames lists the SDS secrets a listener proto refers to. It reads
// the proto, not the compiled form, because a listener cannot compile
// before its secrets arrive.
func SecretNames(l *listenerv3.Listener) []string {
	seen := map[string]bool{}
	add := func(fc *listenerv3.FilterChain) {
		if fc.GetTransportSocket() == nil {
			return
		}
		var ctx tlsv3.DownstreamTlsContext
		if err := fc.GetTransportSocket().GetTypedConfig().UnmarshalTo(&ctx); err != nil {
			return
		}
		for _, n := range tlsconfig.SecretNames(ctx.GetCommonTlsContext()) {
			seen[n] = true
		}
	}
	for _, fc := range l.GetFilterChains() {
		add(fc)
	}
	if l.GetDefaultFilterChain() != nil {
		add(l.GetDefaultFilterChain())
	}
	return sortedKeys(seen)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
