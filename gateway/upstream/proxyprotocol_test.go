package upstream_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	proxyprotocolv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/proxy_protocol/v3"
	rawv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
	"github.com/waygate/waygate/gateway/upstream"
)

// ppBackend is an HTTP backend behind a PROXY protocol reader: it keeps
// the header each connection starts with.
type ppBackend struct {
	net.Listener
	mu      sync.Mutex
	headers [][]byte
}

func (l *ppBackend) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	var h []byte
	if first, _ := br.Peek(1); len(first) == 1 && first[0] == 'P' {
		line, _ := br.ReadBytes('\n')
		h = line
	} else {
		fixed := make([]byte, 16)
		io.ReadFull(br, fixed)
		rest := make([]byte, binary.BigEndian.Uint16(fixed[14:]))
		io.ReadFull(br, rest)
		h = append(fixed, rest...)
	}
	l.mu.Lock()
	l.headers = append(l.headers, h)
	l.mu.Unlock()
	return &readerConn{Conn: c, r: br}, nil
}

func (l *ppBackend) seen() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.headers...)
}

type readerConn struct {
	net.Conn
	r io.Reader
}

func (c *readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func startPPBackend(t *testing.T) *ppBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &ppBackend{Listener: ln}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(b)
	t.Cleanup(func() { srv.Close() })
	return b
}

func proxyProtocolSocket(t *testing.T, v corev3.ProxyProtocolConfig_Version) *corev3.TransportSocket {
	raw, _ := anypb.New(&rawv3.RawBuffer{})
	cfg, err := anypb.New(&proxyprotocolv3.ProxyProtocolUpstreamTransport{
		Config:          &corev3.ProxyProtocolConfig{Version: v},
		TransportSocket: &corev3.TransportSocket{Name: "envoy.transport_sockets.raw_buffer", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: raw}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &corev3.TransportSocket{Name: "envoy.transport_sockets.upstream_proxy_protocol", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: cfg}}
}

// TestUpstreamProxyProtocol: each upstream connection starts with a
// PROXY header naming the client and the gateway address it reached, in
// version 1 or 2, and serves one request.
func TestUpstreamProxyProtocol(t *testing.T) {
	for _, v := range []corev3.ProxyProtocolConfig_Version{corev3.ProxyProtocolConfig_V1, corev3.ProxyProtocolConfig_V2} {
		t.Run(v.String(), func(t *testing.T) {
			b := startPPBackend(t)
			m := upstream.NewManager()
			t.Cleanup(m.Close)
			gw := serve(t, m, cluster([]ep{{addr: b.Addr().String()}}, func(c *clusterv3.Cluster) {
				c.TransportSocket = proxyProtocolSocket(t, v)
			}), nil)
			client := hcmtest.Client()
			for range 2 {
				resp, err := client.Get(gw + "/")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != "ok" {
					t.Fatalf("body %q", body)
				}
			}
			gwAddr := netip.MustParseAddrPort(strings.TrimPrefix(gw, "http://"))
			hs := b.seen()
			if len(hs) != 2 {
				t.Fatalf("%d upstream connections, want one per request", len(hs))
			}
			for _, h := range hs {
				switch v {
				case corev3.ProxyProtocolConfig_V1:
					var src, dst string
					var sp, dp uint16
					if _, err := fmt.Sscanf(string(h), "PROXY TCP4 %s %s %d %d\r\n", &src, &dst, &sp, &dp); err != nil || src != "127.0.0.1" || dst != "127.0.0.1" || dp != gwAddr.Port() || sp == 0 {
						t.Errorf("v1 header %q", h)
					}
				default:
					want := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x11, 0, 12, 127, 0, 0, 1, 127, 0, 0, 1)
					if len(h) != 28 || !bytes.Equal(h[:24], want) || binary.BigEndian.Uint16(h[26:]) != gwAddr.Port() {
						t.Errorf("v2 header %x", h)
					}
				}
			}
		})
	}
}
