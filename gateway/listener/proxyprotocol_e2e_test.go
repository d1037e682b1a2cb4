package listener_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	proxyprotocolv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/proxy_protocol/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/pires/go-proxyproto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// proxyClient sends h (nil: nothing) before each request, as a load
// balancer speaking the PROXY protocol does.
func proxyClient(h *proxyproto.Header) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil || h == nil {
				return c, err
			}
			if _, err := h.WriteTo(c); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	}}
}

// proxyHeader is a PROXY header of version v from src to dst.
func proxyHeader(v byte, src, dst string) *proxyproto.Header {
	s, _ := net.ResolveTCPAddr("tcp", src)
	d, _ := net.ResolveTCPAddr("tcp", dst)
	return proxyproto.HeaderProxyFromAddrs(v, s, d)
}

// proxyListener is an HTTP listener with the proxy_protocol listener
// filter configured by cfg; the connection manager uses the remote
// address, so the backend sees it in x-forwarded-for.
func proxyListener(t *testing.T, name string, cfg *proxyprotocolv3.ProxyProtocol) *listenerv3.Listener {
	l := newListener(name, "127.0.0.1:0", &listenerv3.FilterChain{Filters: []*listenerv3.Filter{httpFilter(t, "v1", func(m *hcmv3.HttpConnectionManager) {
		m.UseRemoteAddress = wrapperspb.Bool(true)
	})}})
	l.ListenerFilters = []*listenerv3.ListenerFilter{{
		Name:       "envoy.filters.listener.proxy_protocol",
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(t, cfg)},
	}}
	l.ListenerFiltersTimeout = nil
	return l
}

func TestProxyProtocol(t *testing.T) {
	g := newGateway(t)
	startBackends(t, g)
	g.mustApply(resourcev3.ListenerType,
		proxyListener(t, "required", &proxyprotocolv3.ProxyProtocol{}),
		proxyListener(t, "optional", &proxyprotocolv3.ProxyProtocol{AllowRequestsWithoutProxyProtocol: true}),
		proxyListener(t, "v2-only", &proxyprotocolv3.ProxyProtocol{DisallowedVersions: []corev3.ProxyProtocolConfig_Version{corev3.ProxyProtocolConfig_V1}}),
	)
	local := proxyproto.HeaderProxyFromAddrs(2, nil, nil) // LOCAL: a health check
	for _, tc := range []struct {
		name, listener string
		header         *proxyproto.Header
		xff            string // "" when the connection must be refused
	}{
		{"v1 IPv4", "required", proxyHeader(1, "192.0.2.7:40000", "198.51.100.1:443"), "192.0.2.7"},
		{"v2 IPv4", "required", proxyHeader(2, "192.0.2.8:40000", "198.51.100.1:443"), "192.0.2.8"},
		{"v2 IPv6", "required", proxyHeader(2, "[2001:db8::9]:40000", "[2001:db8::1]:443"), "2001:db8::9"},
		{"v2 LOCAL keeps the socket's address", "required", local, "127.0.0.1"},
		{"no header where one is required", "required", nil, ""},
		{"no header where it is optional", "optional", nil, "127.0.0.1"},
		{"a header where it is optional", "optional", proxyHeader(1, "192.0.2.10:1", "198.51.100.1:443"), "192.0.2.10"},
		{"a disallowed version", "v2-only", proxyHeader(1, "192.0.2.11:1", "198.51.100.1:443"), ""},
		{"an allowed version", "v2-only", proxyHeader(2, "192.0.2.12:1", "198.51.100.1:443"), "192.0.2.12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := "http://" + g.addr(tc.listener) + "/"
			if tc.xff == "" {
				resp, err := proxyClient(tc.header).Get(u)
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Fatalf("served %d %q, want the connection closed", resp.StatusCode, b)
				}
				return
			}
			resp, e := get(t, proxyClient(tc.header), u)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := e.Headers["x-forwarded-for"]; !strings.HasSuffix(got, tc.xff) || strings.Contains(got, "::ffff:") {
				t.Errorf("x-forwarded-for %q, want %s", got, tc.xff)
			}
		})
	}
}

// A balancer may send the v1 line in more than one packet.
func TestProxyProtocolSplitHeader(t *testing.T) {
	g := newGateway(t)
	startBackends(t, g)
	g.mustApply(resourcev3.ListenerType, proxyListener(t, "split", &proxyprotocolv3.ProxyProtocol{}))
	c, err := net.Dial("tcp", g.addr("split"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "PROXY TCP4 198.51.100.7 ")
	time.Sleep(20 * time.Millisecond)
	io.WriteString(c, "198.51.100.1 40000 443\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 200") || !strings.Contains(string(b), "198.51.100.7") {
		t.Errorf("answer %.300q: want 200 with the client 198.51.100.7 forwarded", b)
	}
}
