package filters

import (
	"context"
	"log/slog"
	"net/netip"
	"sort"

	"google.golang.org/protobuf/proto"
)

// Network filters see the bytes of a TCP connection, both ways, before
// the terminal tcp_proxy pipes them, as Envoy's read and write filters
// do (https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/listeners/network_filters).
// A listener's filter chain lists them before its tcp_proxy or
// http_connection_manager; data from the downstream goes through them
// in that order, data to it in the reverse order.

// Side is a side of a proxied connection.
type Side uint8

const (
	// SideDownstream is the client side: data read from the client.
	SideDownstream Side = iota
	// SideUpstream is the backend side: data on its way to the client,
	// read from the upstream by the tcp_proxy, or written by the HTTP
	// connection manager (Envoy's write filters see it).
	SideUpstream
)

func (s Side) String() string {
	if s == SideUpstream {
		return "upstream"
	}
	return "downstream"
}

// NetworkFilter is one connection's instance of a network filter. Its
// methods are called from the connection's goroutines: OnData for one
// side never overlaps itself, but the two sides' calls may run at once.
type NetworkFilter interface {
	// OnNewConnection is called once, before the upstream is connected.
	// Stop closes the connection; StopAndBuffer holds the next filters
	// and the upstream until the filter calls NetworkConn.Continue for
	// the downstream side.
	OnNewConnection() Status
	// OnData sees data read from side, with everything the filter held
	// before it (StopAndBuffer), in data, which it may change in place.
	// Continue passes what data then holds on; StopAndBuffer holds it and
	// calls again when more arrives (or passes it on once the filter
	// calls NetworkConn.Continue); Stop closes the connection.
	// endStream is true once side has half-closed: data is then the last.
	OnData(side Side, data *Buffer, endStream bool) Status
	// OnClose is called once per side when the connection is over;
	// byPeer tells whether that side's peer closed it first rather than
	// the gateway.
	OnClose(side Side, byPeer bool)
	// OnDone is called last, once, when both sides are closed.
	OnDone()
}

// NetworkConn is a network filter's handle on its connection. Its
// methods may be called from any goroutine, including from inside the
// filter's own callbacks.
type NetworkConn interface {
	// Context ends when the connection does.
	Context() context.Context
	// Info describes the downstream connection.
	Info() Connection
	// ID is unique among the gateway's connections.
	ID() uint64
	// Upstream describes the upstream connection; ok is false before it
	// is connected.
	Upstream() (u UpstreamConn, ok bool)
	// Continue passes on what the filter held on side, as if OnData had
	// returned Continue (Envoy's continueReading). It returns at once;
	// the data moves on the connection's own goroutine.
	Continue(side Side)
	// Close ends the connection both ways.
	Close()
	// Log carries the connection's keys.
	Log() *slog.Logger
}

// UpstreamConn describes the upstream side of a proxied connection.
type UpstreamConn struct {
	Cluster    string
	RemoteAddr netip.AddrPort
	LocalAddr  netip.AddrPort
}

// NetworkFactory creates a connection's filter. It is compiled once per
// config and shared by every connection, so it must be safe for
// concurrent use. NewNetworkFilter may return nil to take no part in the
// connection. A NetworkFactory that holds resources also implements
// io.Closer, as a Factory does.
type NetworkFactory interface {
	NewNetworkFilter(c NetworkConn) NetworkFilter
}

// NetworkBuilder compiles a network filter's typed config into its
// factory. Errors should name the field path.
type NetworkBuilder func(cfg proto.Message, env Env) (NetworkFactory, error)

var networkRegistry struct {
	builders map[string]NetworkBuilder
}

// RegisterNetwork makes the network filter whose config has typeURL
// known to listeners. Call it from init; registering a type URL twice
// panics.
func RegisterNetwork(typeURL string, b NetworkBuilder) {
	registry.Lock()
	defer registry.Unlock()
	if networkRegistry.builders == nil {
		networkRegistry.builders = make(map[string]NetworkBuilder)
	}
	if _, dup := networkRegistry.builders[typeURL]; dup {
		panic("filters: duplicate network registration of " + typeURL)
	}
	networkRegistry.builders[typeURL] = b
}

// LookupNetwork returns the network filter builder for typeURL.
func LookupNetwork(typeURL string) (NetworkBuilder, bool) {
	registry.RLock()
	defer registry.RUnlock()
	b, ok := networkRegistry.builders[typeURL]
	return b, ok
}

// RegisteredNetwork lists the registered network filter type URLs, sorted.
func RegisteredNetwork() []string {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]string, 0, len(networkRegistry.builders))
	for k := range networkRegistry.builders {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
