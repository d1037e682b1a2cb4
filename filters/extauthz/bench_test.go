package extauthz

import (
	"testing"

	"github.com/waygate/waygate/filters"
)

// BenchmarkHTTPCheck is one allowed request through an HTTP authorizer
// on loopback, the round trip included.
func BenchmarkHTTPCheck(b *testing.B) {
	addr, _ := startHTTPAuthz(b)
	f := newFactory(b, httpCfg, clusters{"authz": addr}, nil)
	b.ReportAllocs()
	for b.Loop() {
		x := exchange("GET", "/productpage", "X-Ext-Authz", "allow")
		if st := f.NewFilter(x).(filters.RequestHeadersFilter).OnRequestHeaders(x, true); st != filters.Continue {
			b.Fatalf("denied: %+v", x.LocalReply())
		}
	}
}

// BenchmarkGRPCCheck is one allowed request through a gRPC authorizer
// on loopback.
func BenchmarkGRPCCheck(b *testing.B) {
	addr, _ := startGRPCAuthz(b)
	f := newFactory(b, grpcCfg, clusters{"outbound|9000||ext-authz.foo.svc.cluster.local": addr}, nil)
	b.ReportAllocs()
	for b.Loop() {
		x := exchange("GET", "/productpage", "X-Ext-Authz", "allow")
		if st := f.NewFilter(x).(filters.RequestHeadersFilter).OnRequestHeaders(x, true); st != filters.Continue {
			b.Fatalf("denied: %+v", x.LocalReply())
		}
	}
}
