package wasm

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

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

// cpuTime is the CPU time the process used so far, in every thread:
// a benchmark's figure of CPU per operation holds on a busy machine,
// where wall time per operation counts the waits for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchStreams runs one stream per iteration and reports, beside the wall time,
// the CPU time per stream (cpu-ns/op).
func benchStreams(b *testing.B, f filters.Factory, body []byte) {
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		if err := stream(f, body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
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
			benchStreams(b, f, c.body)
		})
		if c.mode == "noop" {
			// The same no-op written against the raw ABI, with no SDK:
			// what the host and the Go guest runtime cost alone.
			b.Run(c.name+"/rawabi", func(b *testing.B) {
				f := newFactory(b, pluginConf(b, "rawabi", "mode=noop"), Options{PoolSize: 1})
				benchStreams(b, f, nil)
			})
			// Both without a call deadline (a negative CallTimeout).
			b.Run(c.name+"/wasm-untimed", func(b *testing.B) {
				f := newFactory(b, pluginConf(b, "examples", mode(c.mode)), Options{PoolSize: 1, CallTimeout: -1})
				benchStreams(b, f, nil)
			})
			b.Run(c.name+"/rawabi-untimed", func(b *testing.B) {
				f := newFactory(b, pluginConf(b, "rawabi", "mode=noop"), Options{PoolSize: 1, CallTimeout: -1})
				benchStreams(b, f, nil)
			})
			// The no-op of the AssemblyScript SDK, whose runtime is
			// lighter than Go's.
			b.Run(c.name+"/assemblyscript", func(b *testing.B) {
				f := newFactory(b, asConf(b, "noop", "noop"), Options{PoolSize: 1})
				benchStreams(b, f, nil)
			})
		}
		b.Run(c.name+"/native", func(b *testing.B) { benchStreams(b, c.native, c.body) })
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
