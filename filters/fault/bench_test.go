package fault

import (
	"context"
	"testing"

	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/waygate/waygate/filters"
)

// BenchmarkEmptyConfig is the cost on every request through an istiod
// gateway chain, whose HTTPFault is empty.
func BenchmarkEmptyConfig(b *testing.B) {
	f := mustNewB(b, &faultv3.HTTPFault{})
	x := newExchange(context.Background(), &testRoute{})
	b.ReportAllocs()
	for b.Loop() {
		if f.NewFilter(x) != nil {
			b.Fatal("filter created for an empty config")
		}
	}
}

// BenchmarkAbortNotDrawn is a request on a route with a 1% abort that
// the draw spares.
func BenchmarkAbortNotDrawn(b *testing.B) {
	f := mustNewB(b, &faultv3.HTTPFault{Abort: httpAbort(503, pct(1, typev3.FractionalPercent_MILLION))})
	x := newExchange(context.Background(), &testRoute{})
	b.ReportAllocs()
	for b.Loop() {
		fl := f.NewFilter(x)
		fl.(filters.RequestHeadersFilter).OnRequestHeaders(x, true)
		fl.(filters.DoneFilter).OnDone(x)
	}
}

func mustNewB(b *testing.B, pb *faultv3.HTTPFault) *Factory {
	f, err := New(pb, filters.Env{})
	if err != nil {
		b.Fatal(err)
	}
	return f
}
