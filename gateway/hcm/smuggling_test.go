package hcm_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
	"github.com/waygate/waygate/gateway/http1"
)

// TestAmbiguousRequestsAreNotForwarded sends requests whose end two
// parsers could disagree about (request smuggling, RFC 9112 section
// 11.2) and malformed heads: each gets its precise 4xx from the gateway,
// the connection closes, and the backend never sees a request.
func TestAmbiguousRequestsAreNotForwarded(t *testing.T) {
	if !http1.Enabled() {
		// net/http's server forwards most of these (see package http1).
		t.Skip("WAYGATE_HTTP1=nethttp")
	}
	var seen atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	gw := hcmtest.Start(t, hcmtest.Options{
		HCM:      hcmtest.HCM(t, hcmtest.Routes(hcmtest.Prefix("/", "b"))),
		Clusters: []*clusterv3.Cluster{hcmtest.StaticCluster("b", ln.Addr().String())},
	})
	tests := []struct {
		name, raw string
		want      int
	}{
		{"Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"two Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n", 400},
		{"chunked not last", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400},
		{"obfuscated Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", 400},
		{"bare LF", "GET / HTTP/1.1\nHost: x\n\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
		{"oversized head", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + string(make([]byte, 0)) + bigValue(70<<10) + "\r\n\r\n", 431},
		{"missing Host", "GET / HTTP/1.1\r\n\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", gw.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			go func() { _, _ = io.WriteString(c, tt.raw) }()
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("the connection stays open (%v)", err)
			}
		})
	}
	if n := seen.Load(); n != 0 {
		t.Errorf("the backend saw %d requests", n)
	}
}

func bigValue(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'v'
	}
	return string(b)
}
