package wasm

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/waygate/waygate/filters"
)

// stream runs one exchange through a filter as the chain does: request
// headers, the body when there is one, response headers, done.
func stream(fac filters.Factory, body []byte) error {
	x := exchange("User-Agent", "bench", "Accept", "*/*")
	x.Response = filters.Response{Status: 200, Header: http.Header{"Content-Type": {"text/plain"}}}
	fl := fac.NewFilter(x)
	end := body == nil
	if st := fl.(filters.RequestHeadersFilter).OnRequestHeaders(x, end); st != filters.Continue {
		return fmt.Errorf("request headers: %v %+v", st, x.LocalReply())
	}
	if !end {
		if st := fl.(filters.RequestBodyFilter).OnRequestBody(x, filters.NewBuffer(body), true); st != filters.Continue {
			return fmt.Errorf("request body: %v %+v", st, x.LocalReply())
		}
	}
	if rh, ok := fl.(filters.ResponseHeadersFilter); ok {
		rh.OnResponseHeaders(x, true)
	}
	if d, ok := fl.(filters.DoneFilter); ok {
		d.OnDone(x)
	}
	return nil
}

// Native filters doing what the benchmark plugins do, for comparison.
type nativeNoop struct{}

func (nativeNoop) OnRequestHeaders(*filters.Exchange, bool) filters.Status  { return filters.Continue }
func (nativeNoop) OnResponseHeaders(*filters.Exchange, bool) filters.Status { return filters.Continue }
func (nativeNoop) OnDone(*filters.Exchange)                                 {}

type nativeAddHeader struct{ nativeNoop }

func (nativeAddHeader) OnRequestHeaders(x *filters.Exchange, _ bool) filters.Status {
	x.Request.Header.Add("X-Wasm", "1")
	return filters.Continue
}

type nativeReadBody struct{ nativeNoop }

func (nativeReadBody) OnRequestBody(_ *filters.Exchange, b *filters.Buffer, end bool) filters.Status {
	if !end {
		return filters.StopAndBuffer
	}
	if len(b.Bytes()) != b.Len() {
		panic("short body")
	}
	return filters.Continue
}

// BenchmarkRequest is the per-request cost of a plugin against the same
// logic as a native filter: NewFilter, request headers, (a 1 KiB body),
// response headers and done.
func BenchmarkRequest(b *testing.B) {
	body := []byte(strings.Repeat("x", 1024))
	for _, c := range []struct {
		name   string
		mode   string
		native filters.Factory
		body   []byte
	}{
		{"noop", "noop", filters.FactoryFunc(func(*filters.Exchange) any { return nativeNoop{} }), nil},
		{"addheader", "addheader", filters.FactoryFunc(func(*filters.Exchange) any { return nativeAddHeader{} }), nil},
		{"readbody", "readbody", filters.FactoryFunc(func(*filters.Exchange) any { return nativeReadBody{} }), body},
	} {
		b.Run(c.name+"/wasm", func(b *testing.B) {
			f := newFactory(b, pluginConf(b, "examples", mode(c.mode)), Options{PoolSize: 1})
			b.ReportAllocs()
			for b.Loop() {
				if err := stream(f, c.body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/native", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := stream(c.native, c.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPoolThroughput runs header-adding streams from 2, 8 and 64
// goroutines at once over a pool of GOMAXPROCS instances.
func BenchmarkPoolThroughput(b *testing.B) {
	f := newFactory(b, pluginConf(b, "examples", mode("addheader")), Options{})
	for _, n := range []int{2, 8, 64} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			b.SetParallelism(max(1, n/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := stream(f, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
