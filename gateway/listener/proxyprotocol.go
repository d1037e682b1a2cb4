package listener

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	proxyprotocolv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/proxy_protocol/v3"
	"github.com/pires/go-proxyproto"
)

// The PROXY protocol listener filter
// (envoy.filters.listener.proxy_protocol): a gateway behind a TCP load
// balancer (an AWS NLB, HAProxy) learns the client's address from the
// PROXY protocol header the balancer sends before anything else, v1 or
// v2. The header's source becomes the connection's remote address for
// everything after (x-forwarded-for, authorization's remote_ip, rate
// limits, access logs); direct_remote_ip stays the balancer's, as in
// Envoy. Istio users add the filter with an EnvoyFilter.
// https://www.envoyproxy.io/docs/envoy/latest/configuration/listeners/listener_filters/proxy_protocol
// Parsing is github.com/pires/go-proxyproto's.
const proxyProtocolType = "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol"

// proxyProtocol is a compiled proxy_protocol listener filter.
type proxyProtocol struct {
	// optional lets connections without a header through as they are
	// (allow_requests_without_proxy_protocol).
	optional bool
	// disallowed are the versions refused (disallowed_versions).
	disallowed [3]bool
}

// compileProxyProtocol checks the filter's config. TLVs to metadata
// (rules) are refused rather than silently not set.
func compileProxyProtocol(lf *listenerv3.ListenerFilter) (*proxyProtocol, error) {
	var cfg proxyprotocolv3.ProxyProtocol
	if err := lf.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
		return nil, fmt.Errorf("typed_config: %v", err)
	}
	if len(cfg.GetRules()) > 0 {
		return nil, fmt.Errorf("typed_config.rules: TLVs to dynamic metadata are not supported")
	}
	p := &proxyProtocol{optional: cfg.GetAllowRequestsWithoutProxyProtocol()}
	for _, v := range cfg.GetDisallowedVersions() {
		switch v {
		case corev3.ProxyProtocolConfig_V1:
			p.disallowed[1] = true
		case corev3.ProxyProtocolConfig_V2:
			p.disallowed[2] = true
		}
	}
	if p.disallowed[1] && p.disallowed[2] {
		return nil, fmt.Errorf("typed_config.disallowed_versions: every version is disallowed")
	}
	return p, nil
}

var errNoProxyHeader = errors.New("no PROXY protocol header")

// read reads the PROXY protocol header of a new connection by deadline
// (zero: none), sets the client's and the original destination's
// addresses in f, and returns a connection that reads on after the
// header and reports those addresses. A header of the LOCAL command (a
// balancer's health check) keeps the connection's own addresses.
func (p *proxyProtocol) read(c net.Conn, f *connFacts, deadline time.Time) (net.Conn, error) {
	if !deadline.IsZero() {
		_ = c.SetReadDeadline(deadline)
		defer c.SetReadDeadline(time.Time{})
	}
	br := bufio.NewReaderSize(c, 256)
	awaitV1Line(br)
	h, err := proxyproto.Read(br)
	switch {
	case errors.Is(err, proxyproto.ErrNoProxyProtocol) && p.optional:
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		return nil, errNoProxyHeader
	case err != nil:
		return nil, fmt.Errorf("PROXY protocol header: %w", err)
	case p.disallowed[h.Version]:
		return nil, fmt.Errorf("PROXY protocol version %d is disallowed", h.Version)
	case h.Command.IsProxy():
		src, dst, ok := h.TCPAddrs()
		if !ok {
			// UNSPEC, UDP or Unix: Envoy keeps the socket's addresses.
			break
		}
		f.src, f.dst = addrPortOf(src), addrPortOf(dst)
	}
	// What the reader buffered past the header is replayed first.
	rest, _ := br.Peek(br.Buffered())
	return &proxiedConn{
		replayConn: replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(bytes.Clone(rest)), c)},
		remote:     net.TCPAddrFromAddrPort(f.src),
		local:      net.TCPAddrFromAddrPort(f.dst),
	}, nil
}

// maxV1Header is the longest v1 header the specification allows, CRLF
// included.
const maxV1Header = 107

// awaitV1Line waits until a v1 header's line is buffered whole: the
// parser reads only what has arrived, and a balancer may send the line
// in more than one packet. It stops at the line's end, an error (the
// parser then reports it) or the v1 maximum.
func awaitV1Line(br *bufio.Reader) {
	b, err := br.Peek(6)
	if err != nil || string(b) != "PROXY " {
		return
	}
	for n := 7; n <= maxV1Header; n++ {
		b, err := br.Peek(n)
		if err != nil || b[n-1] == '\n' {
			return
		}
	}
}

// proxiedConn is a connection whose addresses are the ones its PROXY
// protocol header gave.
type proxiedConn struct {
	replayConn
	remote, local net.Addr
}

func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }
func (c *proxiedConn) LocalAddr() net.Addr  { return c.local }

// addrPortOf is the netip form of a TCP address, unmapped.
func addrPortOf(a *net.TCPAddr) netip.AddrPort {
	ap := a.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
