package wasm

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/waygate/waygate/filters"
)

// newHTTPWasmFactory builds an http-wasm factory outside a chain, closed
// when the test ends.
func newHTTPWasmFactory(t testing.TB, conf string, o Options) *httpWasmFactory {
	t.Helper()
	f, err := newHTTPWasm(t.Context(), pluginConf(t, "httpwasm", conf), mustRead(t, pluginPath["httpwasm"]), envForTest(t), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// BenchmarkHTTPWasmRequest is the per-request cost of an http-wasm
// guest (handle_request and handle_response) against the same logic as
// a native filter: NewFilter, request headers, response headers, done.
func BenchmarkHTTPWasmRequest(b *testing.B) {
	for _, c := range []struct {
		mode   string
		native filters.Factory
	}{
		{"noop", filters.FactoryFunc(func(*filters.Exchange) any { return nativeNoop{} })},
		{"addheader", filters.FactoryFunc(func(*filters.Exchange) any { return nativeAddHeader{} })},
	} {
		b.Run(c.mode+"/wasm", func(b *testing.B) {
			f := newHTTPWasmFactory(b, c.mode, Options{PoolSize: 1})
			b.ReportAllocs()
			for b.Loop() {
				if err := stream(f, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.mode+"/native", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := stream(c.native, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHTTPWasmPoolThroughput runs header-adding streams from 2, 8
// and 64 goroutines at once over a pool of GOMAXPROCS instances.
func BenchmarkHTTPWasmPoolThroughput(b *testing.B) {
	f := newHTTPWasmFactory(b, "addheader", Options{})
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
