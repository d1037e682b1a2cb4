package hcm_test

import (
	"io"
	"net"
	"net/http"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// startFast starts a minimal backend, so that the benchmarks measure
// the gateway rather than the echo backend's JSON.
func startFast(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := []byte("hello, world\n")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// benchGet sends GET url b.N times over one keep-alive connection.
func benchGet(b *testing.B, url string) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}
	b.Cleanup(c.CloseIdleConnections)
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkDirect is the baseline for BenchmarkProxyEmptyChain: the
// same client and backend without the gateway between them.
func BenchmarkDirect(b *testing.B) {
	benchGet(b, "http://"+startFast(b)+"/")
}

// BenchmarkProxyEmptyChain is one request through the connection
// manager with only the router filter, over loopback HTTP/1.1
// keep-alive connections on both sides. Allocations counted include the
// client's and the backend's, which BenchmarkDirect measures alone;
// BenchmarkRawEmptyChain counts the gateway's alone.
func BenchmarkProxyEmptyChain(b *testing.B) {
	addr := startFast(b)
	gw := hcmtest.Start(b, hcmtest.Options{
		HCM:      hcmtest.HCM(b, hcmtest.Routes(hcmtest.Prefix("/", "fast"))),
		Clusters: []*clusterv3.Cluster{hcmtest.StaticCluster("fast", addr)},
	})
	benchGet(b, gw.URL+"/")
}
