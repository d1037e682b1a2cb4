package cors

import (
	"net/http"
	"testing"

	"github.com/waygate/waygate/filters"
)

// BenchmarkActualRequest is an allowed cross-origin GET through both
// phases.
func BenchmarkActualRequest(b *testing.B) {
	p, err := Compile(istio())
	if err != nil {
		b.Fatal(err)
	}
	f := New(filters.Env{})
	x := &filters.Exchange{
		Request: filters.Request{Method: "GET", Header: http.Header{"Origin": {"https://shop.example.org"}}},
		Route:   &testRoute{per: map[string]any{FilterName: p}},
	}
	x.Response.Header = http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		fl := f.NewFilter(x)
		fl.(filters.RequestHeadersFilter).OnRequestHeaders(x, true)
		fl.(filters.ResponseHeadersFilter).OnResponseHeaders(x, true)
	}
}
