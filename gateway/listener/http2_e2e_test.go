package listener_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	httpinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/http_inspector/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestHTTP2OverTLSByALPN(t *testing.T) {
	g := newGateway(t)
	be := startBackend(t, g)
	ca := newCA(t, "test CA")
	cert := issue(t, &ca, "gw", false, "gw.example.com")
	listenerWith := func(handshake time.Duration, alpn ...string) *listenerv3.Listener {
		var timeout *durationpb.Duration
		if handshake > 0 {
			timeout = durationpb.New(handshake)
		}
		return newListener("https", "127.0.0.1:0", &listenerv3.FilterChain{
			TransportSocketConnectTimeout: timeout,
			TransportSocket: tlsSocket(t, &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
				TlsCertificates: []*tlsv3.TlsCertificate{cert.tlsCertificate()},
				AlpnProtocols:   alpn,
			}}),
			Filters: []*listenerv3.Filter{httpFilter(t, "web")},
		})
	}
	tests := []struct {
		name      string
		alpn      []string
		upstream2 bool
		handshake time.Duration // transport_socket_connect_timeout
		want      string
	}{
		{name: "h2 offered", alpn: []string{"h2", "http/1.1"}, want: "HTTP/2.0"},
		{name: "h2 offered, HTTP/2 upstream", alpn: []string{"h2", "http/1.1"}, upstream2: true, want: "HTTP/2.0"},
		{name: "h2 offered, handshake done before the HTTP server", alpn: []string{"h2", "http/1.1"}, handshake: 5 * time.Second, want: "HTTP/2.0"},
		{name: "only http/1.1 offered", alpn: []string{"http/1.1"}, want: "HTTP/1.1"},
		{name: "no ALPN configured", want: "HTTP/1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := staticCluster("web", be.Addr())
			if tt.upstream2 {
				cl = http2Cluster(t, "web", be.Addr())
			}
			g.mustApply(resourcev3.ClusterType, cl)
			g.mustApply(resourcev3.ListenerType, listenerWith(tt.handshake, tt.alpn...))
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				ForceAttemptHTTP2: true,
				TLSClientConfig:   &tls.Config{RootCAs: ca.pool(), ServerName: "gw.example.com"},
			}}
			defer c.CloseIdleConnections()
			resp, e := get(t, c, "https://"+g.addr("https")+"/h2")
			if resp.Proto != tt.want {
				t.Errorf("downstream protocol %s, want %s", resp.Proto, tt.want)
			}
			if resp.StatusCode != http.StatusOK || e.Service != "web" || e.Path != "/h2" {
				t.Errorf("got %d from %q for %q, want 200 from web for /h2", resp.StatusCode, e.Service, e.Path)
			}
			wantUp := "HTTP/1.1"
			if tt.upstream2 {
				wantUp = "HTTP/2.0"
			}
			if e.Proto != wantUp {
				t.Errorf("backend saw %s, want %s", e.Proto, wantUp)
			}
		})
	}
}

func TestH2CPriorKnowledge(t *testing.T) {
	g := newGateway(t)
	startBackend(t, g)
	g.mustApply(resourcev3.ListenerType, newListener("http", "127.0.0.1:0", &listenerv3.FilterChain{
		Filters: []*listenerv3.Filter{httpFilter(t, "web")},
	}))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	var dials int
	tr := &http.Transport{Protocols: &p, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials++
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	defer c.CloseIdleConnections()
	for i := 0; i < 3; i++ {
		resp, e := get(t, c, "http://"+g.addr("http")+"/h2c")
		if resp.Proto != "HTTP/2.0" || resp.StatusCode != http.StatusOK || e.Service != "web" {
			t.Fatalf("got %s %d from %q, want HTTP/2.0 200 from web", resp.Proto, resp.StatusCode, e.Service)
		}
	}
	if dials != 1 {
		t.Errorf("%d connections for 3 requests, want one multiplexed connection", dials)
	}
}

// TestHTTPInspector matches plaintext chains on the HTTP version the
// http_inspector listener filter reads, as istiod's inbound listeners
// do with application_protocols ["http/1.1", "h2c"]; what is not HTTP
// goes to the default chain.
func TestHTTPInspector(t *testing.T) {
	g := newGateway(t)
	startBackends(t, g)
	startTCPEchoes(t, g, "one")
	l := newListener("mixed", "127.0.0.1:0",
		&listenerv3.FilterChain{
			FilterChainMatch: &listenerv3.FilterChainMatch{ApplicationProtocols: []string{"h2c"}},
			Filters:          []*listenerv3.Filter{httpFilter(t, "v2")},
		},
		&listenerv3.FilterChain{
			FilterChainMatch: &listenerv3.FilterChainMatch{ApplicationProtocols: []string{"http/1.1", "http/1.0"}},
			Filters:          []*listenerv3.Filter{httpFilter(t, "v1")},
		},
	)
	l.DefaultFilterChain = &listenerv3.FilterChain{Filters: []*listenerv3.Filter{tcpFilter(t, "tcp-one")}}
	l.ListenerFilters = []*listenerv3.ListenerFilter{{
		Name:       "envoy.filters.listener.http_inspector",
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(t, &httpinspectorv3.HttpInspector{})},
	}}
	g.mustApply(resourcev3.ListenerType, l)
	addr := g.addr("mixed")

	if resp, e := get(t, plainClient(), "http://"+addr+"/"); resp.Proto != "HTTP/1.1" || e.Version != "v1" {
		t.Errorf("HTTP/1.1 got %s from %q, want the http/1.1 chain's v1", resp.Proto, e.Version)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &p}}
	defer h2c.CloseIdleConnections()
	if resp, e := get(t, h2c, "http://"+addr+"/"); resp.Proto != "HTTP/2.0" || e.Version != "v2" {
		t.Errorf("h2c got %s from %q, want the h2c chain's v2", resp.Proto, e.Version)
	}
	if reply, err := echoOnce(addr, "hello"); err != nil || reply != "one hello\n" {
		t.Errorf("plain TCP got %q %v, want the default chain's tcp-echo", reply, err)
	}
}
