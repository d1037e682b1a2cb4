package filters

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// Exchange is one HTTP request/response pair as the filter chain sees it.
// The connection manager owns it; filters read and modify it in place.
// It is used by one goroutine at a time and never shared between streams.
type Exchange struct {
	// Context is canceled when the downstream goes away or the stream
	// times out; blocking filters must honor it.
	Context context.Context

	Request  Request
	Response Response

	// Downstream describes the client connection.
	Downstream Connection

	// Route is the route the request matched, or nil when none did (the
	// router then answers 404). ClearRouteCache makes the next read of
	// Route match again, after a filter changed headers that routing uses.
	Route Route

	// Metadata is dynamic metadata, by filter namespace
	// (envoy.filters.http.jwt_authn, ...) as in Envoy's StreamInfo; later
	// filters (rbac, wasm, access log) read what earlier ones wrote.
	Metadata map[string]map[string]any

	// Info is what the access log and stats report about the exchange.
	Info StreamInfo

	// Log carries the stream's keys (listener, route, cluster).
	Log *slog.Logger

	// RequestBody is the request body as the terminal filter reads it:
	// the downstream body after every request body filter ran on it.
	// Reading it returns ErrLocalReply once a body filter answered.
	RequestBody io.ReadCloser

	// Encoder is how the terminal filter answers: it runs the response
	// filters and writes to the downstream.
	Encoder Encoder

	reply      *LocalReply
	rematch    func(*Exchange) Route
	routeDirty bool
	random     uint64
	hasRandom  bool
}

// Random is the exchange's random value, drawn on first use and kept,
// as Envoy's stream id: runtime_fraction matches and weighted cluster
// picks made again after ClearRouteCache decide as the first did.
func (x *Exchange) Random() uint64 {
	if !x.hasRandom {
		x.random, x.hasRandom = rand.Uint64(), true
	}
	return x.random
}

// Request is the request head. Pseudo-headers are fields; Header holds the
// rest, in net/http's canonical form.
type Request struct {
	Method    string
	Scheme    string // "http" or "https", as the downstream used it
	Authority string // :authority / Host
	Path      string // path and query, as received (after normalization)
	Protocol  string // "HTTP/1.1", "HTTP/2", "HTTP/3"
	Header    http.Header
	Trailer   http.Header
	// ContentLength is -1 when unknown.
	ContentLength int64
	// ID is the x-request-id of the exchange.
	ID string
}

// Response is the response head, filled when the upstream (or a local
// reply) answered.
type Response struct {
	Status  int
	Header  http.Header
	Trailer http.Header
}

// Connection describes one side of a connection.
type Connection struct {
	// RemoteAddr is the client's address: the connection's peer (as a
	// PROXY protocol header gave it, if any), and, for an HTTP request,
	// the address the connection manager trusts from x-forwarded-for
	// (xff_num_trusted_hops; port 0 then). Envoy's remote_ip.
	RemoteAddr netip.AddrPort
	LocalAddr  netip.AddrPort
	// SourceAddr is the connection's peer after the PROXY protocol,
	// whatever x-forwarded-for says (Envoy's source_ip); DirectRemoteAddr
	// is the socket's peer (direct_remote_ip). The zero value means the
	// same as RemoteAddr.
	SourceAddr       netip.AddrPort
	DirectRemoteAddr netip.AddrPort
	// TLS is nil for plaintext connections.
	TLS *tls.ConnectionState
	// LocalURISANs are the URI SANs of the certificate the gateway
	// presents on a TLS connection (the By of x-forwarded-client-cert).
	LocalURISANs []string
	// Listener is the name of the xDS Listener that accepted it.
	Listener string
	// FilterChain is the name of the matched filter chain.
	FilterChain string
	// RequestedServerName is the SNI of a TLS connection, as the
	// listener read it from the ClientHello (also when the gateway
	// passes TLS through untouched); "" otherwise.
	RequestedServerName string
	// ListenerMetadata is the listener's metadata, nil when it has none.
	ListenerMetadata *corev3.Metadata
	// ListenerDirection is the listener's traffic_direction.
	ListenerDirection corev3.TrafficDirection
	// ID numbers the connection among the gateway's connections
	// (Envoy's connection.id), from NewConnectionID; 0 when unknown.
	ID uint64
}

// Route is what a filter may learn of the matched route. The concrete
// type belongs to the router package; filters see this view only.
type Route interface {
	// Name is the route's name (may be empty, as in Envoy).
	Name() string
	// VirtualHost is the name of the virtual host the route belongs to.
	VirtualHost() string
	// Cluster is the upstream cluster the route targets: for weighted
	// clusters the one picked when the route was matched; "" for
	// redirect, direct-response and cluster_header routes.
	Cluster() string
	// PerFilterConfig returns the compiled typed_per_filter_config for the
	// filter named name, the most specific of route, virtual host and
	// route configuration, or nil.
	PerFilterConfig(name string) any
}

// StreamInfo is the exchange's record for logs and stats, after Envoy's
// StreamInfo. The connection manager and the router fill it.
type StreamInfo struct {
	Start time.Time
	// ResponseFlags are Envoy's short flags (UH, UF, UO, NR, URX, UT, DI,
	// FI, RL, UAEX, ...), joined with "," in the access log.
	ResponseFlags []string
	// ResponseCodeDetails says why the response code was set
	// ("via_upstream", "route_not_found", ...).
	ResponseCodeDetails string
	UpstreamCluster     string
	UpstreamHost        string
	// UpstreamHostMetadata is the picked endpoint's metadata
	// (lb_endpoints[].metadata), nil before a pick or when it has none.
	UpstreamHostMetadata *corev3.Metadata
	BytesReceived        int64
	BytesSent            int64
	// UpstreamServiceTime is the time the upstream took, for
	// x-envoy-upstream-service-time.
	UpstreamServiceTime time.Duration
	Attempts            int
}

// AddResponseFlag records an Envoy response flag once.
func (i *StreamInfo) AddResponseFlag(flag string) {
	for _, f := range i.ResponseFlags {
		if f == flag {
			return
		}
	}
	i.ResponseFlags = append(i.ResponseFlags, flag)
}

// LocalReply is a response generated by the gateway itself.
type LocalReply struct {
	Status int
	Body   string
	Header http.Header
	// Details becomes the response code details (Envoy's
	// %RESPONSE_CODE_DETAILS%), such as "rbac_access_denied".
	Details string
	// Flag is the Envoy response flag to record, if any.
	Flag string
}

// SendLocalReply ends the exchange with a response from the gateway. The
// filter returns Stop after calling it. The response still passes through
// the response filters of every filter of the chain, as in Envoy: those
// of the filters that ran, the answering filter's own, and those of the
// filters after it, which never saw the request.
func (x *Exchange) SendLocalReply(r LocalReply) {
	x.reply = &r
	if r.Details != "" {
		x.Info.ResponseCodeDetails = r.Details
	}
	if r.Flag != "" {
		x.Info.AddResponseFlag(r.Flag)
	}
}

// LocalReply returns the reply a filter asked for, or nil.
func (x *Exchange) LocalReply() *LocalReply { return x.reply }

// ClearRouteCache marks the route for re-matching: the next call to
// MatchedRoute matches the (possibly changed) request again.
func (x *Exchange) ClearRouteCache() { x.routeDirty = true }

// MatchedRoute returns the route, matching again first if a filter
// cleared the route cache.
func (x *Exchange) MatchedRoute() Route {
	if x.routeDirty && x.rematch != nil {
		x.routeDirty = false
		x.Route = x.rematch(x)
	}
	return x.Route
}

// SetRouteMatcher installs the function ClearRouteCache re-matches with.
// The connection manager calls it once per stream.
func (x *Exchange) SetRouteMatcher(m func(*Exchange) Route) { x.rematch = m }

// SetMetadata sets one dynamic metadata value under namespace ns.
func (x *Exchange) SetMetadata(ns, key string, v any) {
	if x.Metadata == nil {
		x.Metadata = make(map[string]map[string]any)
	}
	m := x.Metadata[ns]
	if m == nil {
		m = make(map[string]any)
		x.Metadata[ns] = m
	}
	m[key] = v
}

// Encoder writes the response of an exchange. Only the terminal filter
// (the router) uses it; other filters see the response in their response
// phases.
type Encoder interface {
	// WriteHeaders runs the response header filters on x.Response and,
	// unless one of them holds the headers for the body, sends them.
	WriteHeaders(endStream bool) error
	// WriteBody runs the response body filters on p and sends what they
	// let through. p is not retained.
	WriteBody(p []byte, endStream bool) error
	// WriteTrailers sends response trailers and ends the stream.
	WriteTrailers(t http.Header) error
	// Started reports whether response headers reached the downstream:
	// after that, a failure can only reset the stream.
	Started() bool
	// Hijack takes over the downstream connection for an upgrade
	// (WebSocket). Only HTTP/1.1 connections can be hijacked.
	Hijack() (net.Conn, *bufio.ReadWriter, error)
}

// ErrLocalReply is returned by RequestBody reads after a request body
// filter ended the exchange with a local reply.
var ErrLocalReply = errors.New("filters: exchange ended by a local reply")
