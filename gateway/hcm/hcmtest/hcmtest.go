// Package hcmtest serves an HTTP connection manager on loopback for tests:
// a real http.Server whose connections carry a compiled hcm.Config, with
// route tables and clusters compiled from xDS protos, so that tests of the
// connection manager and of filters exercise the same path as the gateway.
package hcmtest

import (
	"bufio"
	"context"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/waygate/waygate/filters"
	_ "github.com/waygate/waygate/filters/router" // the terminal filter every chain ends with
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/http1"
	"github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/upstream"
)

// Options describe the gateway under test.
type Options struct {
	// HCM is the connection manager config; its route specifier is
	// either inline or an RDS name found in Routes.
	HCM *hcmv3.HttpConnectionManager
	// Routes are the RDS route configurations, by name.
	Routes []*routev3.RouteConfiguration
	// Clusters are the upstream clusters.
	Clusters []*clusterv3.Cluster
	// RemoteAddr, when valid, is the downstream address the connection
	// manager sees instead of the client's loopback one, to test edge
	// behavior for external clients.
	RemoteAddr netip.AddrPort
	// BufferLimit is the compiler's buffer limit; 0 keeps its default.
	BufferLimit int
	// Panics receives the handler's filter panic count.
	Panics filters.Counter
	// AccessLog, when set, compiles the HCM's access_log entries.
	AccessLog func(*accesslogv3.AccessLog) (hcm.AccessLogger, error)
	// Env is what the filters are built with (their Upstream, for
	// filters that call out).
	Env filters.Env
}

// Gateway is a running connection manager.
type Gateway struct {
	// URL is "http://" + the listening address.
	URL    string
	Addr   string
	Config *hcm.Config
	// Handler is the handler being served, for benchmarks that want to
	// drive it another way.
	Handler *hcm.Handler
}

// View is a snapshot's view over compiled route tables and clusters.
type View struct {
	Tables   map[string]*router.Table
	Clusters map[string]*upstream.Cluster
}

// RouteTable returns the RDS table named name.
func (v *View) RouteTable(name string) *router.Table { return v.Tables[name] }

// Cluster returns the cluster named name.
func (v *View) Cluster(name string) *upstream.Cluster { return v.Clusters[name] }

// Compile compiles the HCM, the route tables and the clusters of o.
func Compile(tb testing.TB, o Options) (*hcm.Config, *View) {
	tb.Helper()
	c := &hcm.Compiler{BufferLimit: o.BufferLimit, AccessLog: o.AccessLog, Env: o.Env}
	cfg, err := c.Compile(o.HCM)
	if err != nil {
		tb.Fatalf("compile HCM: %v", err)
	}
	v := &View{Tables: map[string]*router.Table{}}
	for _, rc := range o.Routes {
		t, err := router.Compile(rc)
		if err != nil {
			tb.Fatalf("compile routes %q: %v", rc.GetName(), err)
		}
		v.Tables[rc.GetName()] = t
	}
	cs := make(map[string]*clusterv3.Cluster, len(o.Clusters))
	for _, c := range o.Clusters {
		cs[c.GetName()] = c
	}
	m := upstream.NewManager()
	if v.Clusters, err = m.Build(cs, nil); err != nil {
		tb.Fatalf("build clusters: %v", err)
	}
	return cfg, v
}

// Start compiles o and serves it on 127.0.0.1:0 (HTTP/1.1 and cleartext
// HTTP/2) until the test ends.
func Start(tb testing.TB, o Options) *Gateway {
	tb.Helper()
	cfg, view := Compile(tb, o)
	h := &hcm.Handler{Views: func() hcm.View { return view }, Panics: o.Panics}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	connOf := func(c net.Conn) *hcm.Conn {
		info := filters.Connection{Listener: "test"}
		info.RemoteAddr, _ = netip.ParseAddrPort(c.RemoteAddr().String())
		info.LocalAddr, _ = netip.ParseAddrPort(c.LocalAddr().String())
		if o.RemoteAddr.IsValid() {
			info.RemoteAddr = o.RemoteAddr
		}
		return &hcm.Conn{Config: cfg, Info: info}
	}
	srv := &http.Server{
		Handler:           h,
		Protocols:         p,
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return hcm.WithConn(ctx, connOf(c))
		},
	}
	if !http1.Enabled() {
		go func() { _ = srv.Serve(ln) }()
		tb.Cleanup(func() { _ = srv.Close() })
		return &Gateway{URL: "http://" + ln.Addr().String(), Addr: ln.Addr().String(), Config: cfg, Handler: h}
	}
	// As the listener does: HTTP/1.x on the gateway's own codec, the
	// HTTP/2 preface on net/http's server.
	h1 := &http1.Server{Handler: h, MaxHeaderBytes: 60 << 10, ReadHeaderTimeout: 10 * time.Second}
	h2c := &sniffedConns{ch: make(chan net.Conn), done: make(chan struct{}), addr: ln.Addr()}
	go func() { _ = srv.Serve(h2c) }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReaderSize(c, 4096)
				h2, err := http1.Sniff(br)
				switch {
				case err != nil:
					c.Close()
				case h2:
					h2c.push(http1.Replay(c, br))
				default:
					h1.ServeConn(hcm.WithConn(context.Background(), connOf(c)), c, br)
				}
			}()
		}
	}()
	tb.Cleanup(func() { ln.Close(); _ = srv.Close(); h1.Close() })
	return &Gateway{URL: "http://" + ln.Addr().String(), Addr: ln.Addr().String(), Config: cfg, Handler: h}
}

// Client returns an HTTP/1.1 client that does not follow redirects.
func Client() *http.Client {
	return &http.Client{
		Transport:     &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// H2CClient returns a cleartext HTTP/2 client.
func H2CClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p, DisableCompression: true}}
}

// Any packs m, failing the test on error.
func Any(tb testing.TB, m proto.Message) *anypb.Any {
	tb.Helper()
	a, err := anypb.New(m)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// Filter is an HttpFilter named name with config typed.
func Filter(tb testing.TB, name string, typed proto.Message) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: Any(tb, typed)}}
}

// RouterFilter is the terminal router filter.
func RouterFilter(tb testing.TB) *hcmv3.HttpFilter {
	return Filter(tb, "envoy.filters.http.router", &routerv3.Router{})
}

// HCM is a connection manager with inline routes rc and the given
// filters, to which the router is appended.
func HCM(tb testing.TB, rc *routev3.RouteConfiguration, fs ...*hcmv3.HttpFilter) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix:     "test",
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc},
		HttpFilters:    append(fs, RouterFilter(tb)),
	}
}

// Routes is a route configuration with one catch-all virtual host
// holding routes.
func Routes(routes ...*routev3.Route) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: "test",
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "all",
			Domains: []string{"*"},
			Routes:  routes,
		}},
	}
}

// Prefix is a route forwarding requests under prefix to cluster.
func Prefix(prefix, cluster string) *routev3.Route {
	return &routev3.Route{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
		}},
	}
}

// StaticCluster is a round-robin cluster over addrs (host:port).
func StaticCluster(name string, addrs ...string) *clusterv3.Cluster {
	var lbs []*endpointv3.LbEndpoint
	for _, a := range addrs {
		ap := netip.MustParseAddrPort(a)
		lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address:       ap.Addr().String(),
				PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(ap.Port())},
			}}},
		}}})
	}
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(time.Second),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints:   []*endpointv3.LocalityLbEndpoints{{LbEndpoints: lbs}},
		},
	}
}

// H2 makes c speak cleartext HTTP/2 to its endpoints.
func H2(tb testing.TB, c *clusterv3.Cluster) *clusterv3.Cluster {
	opts := &upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		}},
	}
	c.TypedExtensionProtocolOptions = map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": Any(tb, opts)}
	return c
}

// sniffedConns is the net.Listener net/http's server takes HTTP/2
// connections from.
type sniffedConns struct {
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
	addr   net.Addr
}

func (l *sniffedConns) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *sniffedConns) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *sniffedConns) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *sniffedConns) Addr() net.Addr { return l.addr }
