package upstream_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/waygate/waygate/gateway/upstream"
)

// BenchmarkPick picks among 10 and 1,000 endpoints (equal, or weighted
// 1-4) with each balancer.
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchmarkPick(b, n) })
	}
}

func benchmarkPick(b *testing.B, n int) {
	eps := addrs(n)
	for i := range eps {
		eps[i].weight = uint32(1 + i%4)
	}
	for _, p := range []clusterv3.Cluster_LbPolicy{
		clusterv3.Cluster_ROUND_ROBIN, clusterv3.Cluster_RANDOM, clusterv3.Cluster_LEAST_REQUEST,
		clusterv3.Cluster_RING_HASH, clusterv3.Cluster_MAGLEV,
	} {
		for _, weighted := range []bool{false, true} {
			name := p.String()
			set := eps
			if !weighted {
				set = addrs(n)
			} else {
				name += "/weighted"
			}
			b.Run(name, func(b *testing.B) {
				_, cl, _ := build(b, cluster(set, policy(p)))
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					h := uint64(0)
					for pb.Next() {
						h += 0x9e3779b97f4a7c15
						if _, err := cl.Pick(upstream.PickContext{Hash: h, HasHash: true}); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	}
}

// BenchmarkRoundTrip sends keep-alive HTTP/1.1 requests to a loopback
// backend through the cluster's pool, and through a stock net/http
// Transport for comparison.
func BenchmarkRoundTrip(b *testing.B) {
	addr, _ := countingServer(b)
	_, cl, _ := build(b, cluster([]ep{{addr: addr}}, nil))
	e := cl.Endpoints()[0]
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	defer tr.CloseIdleConnections()
	for _, c := range []struct {
		name string
		rt   func(*http.Request) (*http.Response, error)
	}{
		{"pool", func(r *http.Request) (*http.Response, error) { return cl.RoundTrip(e, r, false) }},
		{"net-http-transport", tr.RoundTrip},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 512)
				for pb.Next() {
					req := &http.Request{
						Method: "GET", URL: &url.URL{Scheme: "http", Host: addr, Opaque: "/"},
						Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Host: "svc",
					}
					resp, err := c.rt(req)
					if err != nil {
						b.Fatal(err)
					}
					for {
						if _, err := resp.Body.Read(buf); err != nil {
							break
						}
					}
					resp.Body.Close()
				}
			})
		})
	}

}
