package upstream

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	proxyprotocolv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/proxy_protocol/v3"
)

// The upstream PROXY protocol transport socket
// (envoy.transport_sockets.upstream_proxy_protocol, what istiod makes of
// a DestinationRule's proxyProtocol): each upstream connection starts
// with a PROXY protocol header carrying the downstream connection's
// addresses, then speaks through the inner socket (plain text or TLS).
// A connection carries one downstream's addresses, so it serves one
// request and is closed, over HTTP/1.1 and HTTP/2 alike (Envoy keeps a
// pool per downstream connection instead).
// https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
const upstreamProxyProtocol = "type.googleapis.com/envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport"

// compileProxyProtocol compiles the wrapper and the socket inside it.
func compileProxyProtocol(ts *corev3.TransportSocket, compileInner func(*corev3.TransportSocket) (*socket, error)) (*socket, error) {
	var pp proxyprotocolv3.ProxyProtocolUpstreamTransport
	if err := ts.GetTypedConfig().UnmarshalTo(&pp); err != nil {
		return nil, fmt.Errorf("typed_config: %v", err)
	}
	if len(pp.GetConfig().GetPassThroughTlvs().GetTlvType()) > 0 || len(pp.GetConfig().GetAddedTlvs()) > 0 {
		return nil, fmt.Errorf("typed_config.config: TLVs are not supported")
	}
	inner, err := compileInner(pp.GetTransportSocket())
	if err != nil {
		return nil, fmt.Errorf("typed_config.transport_socket: %w", err)
	}
	s := &socket{proxyProtocol: uint8(pp.GetConfig().GetVersion()) + 1}
	if inner != nil {
		s.cfg, s.err = inner.cfg, inner.err
	}
	return s, nil
}

type downstreamKey struct{}

// downstreamAddrs are the downstream connection's peer and local
// addresses, for the PROXY protocol header.
type downstreamAddrs struct{ src, dst netip.AddrPort }

// WithDownstream returns ctx carrying the downstream connection's
// addresses, for a cluster that sends them upstream (ProxyProtocol).
func WithDownstream(ctx context.Context, src, dst netip.AddrPort) context.Context {
	return context.WithValue(ctx, downstreamKey{}, downstreamAddrs{src, dst})
}

// ProxyProtocol says whether the cluster's connections start with a
// PROXY protocol header, for which the router passes the downstream's
// addresses (WithDownstream).
func (c *Cluster) ProxyProtocol() bool { return c.proxyProtocol }

// proxyProtocol says whether any socket of t sends PROXY headers.
func (t *transport) proxyProtocol() bool {
	if t == nil {
		return false
	}
	if t.def != nil && t.def.proxyProtocol != 0 {
		return true
	}
	for _, s := range t.byAddr {
		if s != nil && s.proxyProtocol != 0 {
			return true
		}
	}
	return false
}

// writeProxyHeader writes the PROXY header of version (1 or 2) for the
// downstream in ctx; without one (a health check) the header says so
// (UNKNOWN, or LOCAL in version 2).
func writeProxyHeader(ctx context.Context, nc net.Conn, version uint8) error {
	d, ok := ctx.Value(downstreamKey{}).(downstreamAddrs)
	src, dst := d.src.Addr().Unmap(), d.dst.Addr().Unmap()
	known := ok && src.IsValid() && dst.IsValid() && src.Is4() == dst.Is4()
	var b []byte
	switch version {
	case 1:
		switch {
		case !known:
			b = []byte("PROXY UNKNOWN\r\n")
		case src.Is4():
			b = fmt.Appendf(nil, "PROXY TCP4 %s %s %d %d\r\n", src, dst, d.src.Port(), d.dst.Port())
		default:
			b = fmt.Appendf(nil, "PROXY TCP6 %s %s %d %d\r\n", src, dst, d.src.Port(), d.dst.Port())
		}
	default:
		b = append(b, "\r\n\r\n\x00\r\nQUIT\n"...)
		switch {
		case !known:
			b = append(b, 0x20, 0x00, 0, 0) // LOCAL, unspecified
		case src.Is4():
			b = append(b, 0x21, 0x11)
			b = binary.BigEndian.AppendUint16(b, 12)
			b = append(b, src.AsSlice()...)
			b = append(b, dst.AsSlice()...)
			b = binary.BigEndian.AppendUint16(b, d.src.Port())
			b = binary.BigEndian.AppendUint16(b, d.dst.Port())
		default:
			b = append(b, 0x21, 0x21)
			b = binary.BigEndian.AppendUint16(b, 36)
			b = append(b, src.AsSlice()...)
			b = append(b, dst.AsSlice()...)
			b = binary.BigEndian.AppendUint16(b, d.src.Port())
			b = binary.BigEndian.AppendUint16(b, d.dst.Port())
		}
	}
	_, err := nc.Write(b)
	return err
}
