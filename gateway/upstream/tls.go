package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waygate/waygate/gateway/tlsconfig"
)

// Transport socket type URLs a cluster may use.
const (
	rawBufferType = "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"
	upstreamTLS   = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
	// socketMatchKey is the endpoint metadata filter that
	// transport_socket_matches look at.
	socketMatchKey = "envoy.transport_socket_match"
)

// transport is a cluster's compiled transport sockets: the cluster's
// transport_socket, and for each endpoint whose metadata selects one of
// its transport_socket_matches, that one. This is how istiod's auto
// mTLS reaches a gateway: endpoints labeled tlsMode "istio" get Istio
// mTLS, the others plain text.
//
// See https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/cluster/v3/cluster.proto#envoy-v3-api-field-config-cluster-v3-cluster-transport-socket-matches
type transport struct {
	def    *socket
	byAddr map[string]*socket
}

// socket is one transport socket: TLS with its config, or plain text
// when nil. A TLS socket whose SDS secret has not arrived holds the
// error, and connections fail until the secret comes, as Envoy's
// cluster waits for it.
type socket struct {
	cfg *tls.Config
	err error
	// proxyProtocol is the PROXY protocol version a connection starts
	// with (1 or 2), 0 for none (proxyprotocol.go).
	proxyProtocol uint8
}

// forAddr is the socket connections to addr use; nil for plain text.
func (t *transport) forAddr(addr string) *socket {
	if t == nil {
		return nil
	}
	if s, ok := t.byAddr[addr]; ok {
		return s
	}
	return t.def
}

// compileTransport compiles the transport sockets of c for its
// endpoints, resolving SDS secrets from secrets (nil: none yet).
func compileTransport(c *clusterv3.Cluster, endpoints []*Endpoint, secrets tlsconfig.Secrets) (*transport, error) {
	t := &transport{}
	var err error
	if t.def, err = compileSocket(c.GetTransportSocket(), secrets); err != nil {
		return nil, fmt.Errorf("transport_socket: %w", err)
	}
	matches := c.GetTransportSocketMatches()
	if len(matches) == 0 {
		if t.def == nil {
			return nil, nil
		}
		return t, nil
	}
	sockets := make([]*socket, len(matches))
	for i, m := range matches {
		if sockets[i], err = compileSocket(m.GetTransportSocket(), secrets); err != nil {
			return nil, fmt.Errorf("transport_socket_matches[%d] %q: %w", i, m.GetName(), err)
		}
	}
	t.byAddr = map[string]*socket{}
	for _, e := range endpoints {
		md := e.Metadata.GetFilterMetadata()[socketMatchKey].GetFields()
		for i, m := range matches {
			if fieldsMatch(m.GetMatch().GetFields(), md) {
				t.byAddr[e.Address] = sockets[i]
				break
			}
		}
	}
	return t, nil
}

// fieldsMatch says whether every field of want has the same value in
// got; an empty match takes every endpoint.
func fieldsMatch(want, got map[string]*structpb.Value) bool {
	for k, v := range want {
		g, ok := got[k]
		if !ok || !proto.Equal(v, g) {
			return false
		}
	}
	return true
}

func compileSocket(ts *corev3.TransportSocket, secrets tlsconfig.Secrets) (*socket, error) {
	if ts == nil {
		return nil, nil
	}
	typed := ts.GetTypedConfig()
	if typed == nil {
		return nil, fmt.Errorf("%q: typed_config is required", ts.GetName())
	}
	switch typed.GetTypeUrl() {
	case rawBufferType:
		return nil, nil
	case upstreamProxyProtocol:
		return compileProxyProtocol(ts, func(inner *corev3.TransportSocket) (*socket, error) {
			if inner.GetTypedConfig().GetTypeUrl() == upstreamProxyProtocol {
				return nil, errors.New("a PROXY protocol socket cannot wrap another")
			}
			return compileSocket(inner, secrets)
		})
	case upstreamTLS:
		ctx := &tlsv3.UpstreamTlsContext{}
		if err := typed.UnmarshalTo(ctx); err != nil {
			return nil, fmt.Errorf("typed_config: %v", err)
		}
		cfg, err := tlsconfig.Upstream(ctx, secrets)
		if errors.Is(err, tlsconfig.ErrMissingSecret) {
			return &socket{err: err}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("typed_config: %w", err)
		}
		return &socket{cfg: cfg}, nil
	}
	return nil, fmt.Errorf("%s is not supported; use TLS (UpstreamTlsContext) or raw_buffer", typed.GetTypeUrl())
}

// SecretNames lists the SDS secrets the clusters' TLS sockets read, for
// the SDS subscription.
func SecretNames(clusters map[string]*clusterv3.Cluster) []string {
	seen := map[string]bool{}
	var out []string
	add := func(ts *corev3.TransportSocket) {
		if ts.GetTypedConfig().GetTypeUrl() != upstreamTLS {
			return
		}
		ctx := &tlsv3.UpstreamTlsContext{}
		if ts.GetTypedConfig().UnmarshalTo(ctx) != nil {
			return
		}
		for _, n := range tlsconfig.SecretNames(ctx.GetCommonTlsContext()) {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	for _, c := range clusters {
		add(c.GetTransportSocket())
		for _, m := range c.GetTransportSocketMatches() {
			add(m.GetTransportSocket())
		}
	}
	return out
}

// dial opens a connection to addr for the cluster within its connect
// timeout: TCP (the Manager's Dial, else a net.Dialer), then the TLS
// handshake when the address's transport socket asks for it.
func (cs *clusterState) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cs.settings.connectTimeout)
	defer cancel()
	var nc net.Conn
	var err error
	if cs.m.Dial != nil {
		nc, err = cs.m.Dial(ctx, network, addr)
	} else {
		nc, err = (&net.Dialer{KeepAliveConfig: cs.settings.keepAlive}).DialContext(ctx, network, addr)
	}
	if err != nil {
		return nil, err
	}
	s := cs.transport.Load().forAddr(addr)
	if s == nil {
		return nc, nil
	}
	if s.err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster %q: %w", cs.name, s.err)
	}
	if s.proxyProtocol != 0 {
		if err := writeProxyHeader(ctx, nc, s.proxyProtocol); err != nil {
			nc.Close()
			return nil, fmt.Errorf("cluster %q: PROXY protocol header to %s: %w", cs.name, addr, err)
		}
	}
	if s.cfg == nil {
		return nc, nil
	}
	tc := tls.Client(nc, s.cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster %q: TLS handshake with %s: %w", cs.name, addr, err)
	}
	return tc, nil
}

// sameSockets says whether two versions of a cluster configure the same
// transport sockets. When they do not, the cluster starts over with new
// connection pools, as Envoy replaces a cluster whose config changed:
// a connection opened under the old rules (another expected identity)
// must not serve requests under the new ones. A rotated SDS secret
// keeps the sockets and the connections.
func sameSockets(a, b *clusterv3.Cluster) bool {
	if !proto.Equal(a.GetTransportSocket(), b.GetTransportSocket()) || len(a.GetTransportSocketMatches()) != len(b.GetTransportSocketMatches()) {
		return false
	}
	for i, m := range a.GetTransportSocketMatches() {
		if !proto.Equal(m, b.GetTransportSocketMatches()[i]) {
			return false
		}
	}
	return true
}
