package wasm

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestHTTPWasmSlowClientBody checks that a guest reading the request
// body of a client slower than the call deadline is not killed: the
// deadline bounds the guest's own time, not the client's.
func TestHTTPWasmSlowClientBody(t *testing.T) {
	t.Setenv(EnvCallTimeout, "100ms")
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "httpwasm", "features"))},
		hcmtest.StaticCluster("body", startBodyEcho(t)))
	c, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: body\r\nx-test: bufreq\r\nContent-Length: 10\r\n\r\nslow")
	time.Sleep(300 * time.Millisecond)
	fmt.Fprintf(c, "client")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := make([]byte, 64)
	n, _ := resp.Body.Read(b)
	if resp.StatusCode != 200 || string(b[:n]) != "slowclient" {
		t.Errorf("got %d %q, want 200 slowclient", resp.StatusCode, b[:n])
	}
	if n := g.store.Counter("wasm.httpwasm.vm_failures").Value(); n != 0 {
		t.Errorf("vm_failures = %d, want 0", n)
	}
}

// TestHTTPWasmStalledClientBody checks that a client that stops
// sending the body a guest reads gets 408 without costing the instance,
// and that other requests are served meanwhile.
func TestHTTPWasmStalledClientBody(t *testing.T) {
	t.Setenv(EnvCallTimeout, "100ms")
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "httpwasm", "features"))},
		hcmtest.StaticCluster("body", startBodyEcho(t)))
	c, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: body\r\nx-test: bufreq\r\nContent-Length: 10\r\n\r\nstall")
	for range 3 {
		if r := do(t, "POST", g.url+"/", "meanwhile", "host", "body", "x-test", "bufreq"); r.status != 200 || r.body != "meanwhile" {
			t.Errorf("meanwhile: %d %q", r.status, r.body)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 408 {
		t.Errorf("stalled client: %d, want 408", resp.StatusCode)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the stalled client was answered after %v", took)
	}
	if n := g.store.Counter("wasm.httpwasm.vm_failures").Value(); n != 0 {
		t.Errorf("vm_failures = %d, want 0", n)
	}
}

// TestHTTPWasmBodyOverBufferLimit checks that a body the guest buffers
// beyond the chain's buffer limit gets 413 and never reaches upstream.
func TestHTTPWasmBodyOverBufferLimit(t *testing.T) {
	// The guest reads in 7-byte chunks: hundreds of thousands of host
	// calls in one handle_request, which a loaded machine may stretch
	// past the default deadline. The limit, not the deadline, is tested.
	t.Setenv(EnvCallTimeout, "10s")
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "httpwasm", "features"))},
		hcmtest.StaticCluster("body", startBodyEcho(t)))
	big := strings.Repeat("x", 2<<20)
	if r := do(t, "POST", g.url+"/", big, "host", "body", "x-test", "bufreq"); r.status != 413 {
		t.Errorf("status %d, want 413", r.status)
	}
	if r := do(t, "POST", g.url+"/", "small", "host", "body", "x-test", "bufreq"); r.status != 200 || r.body != "small" {
		t.Errorf("then: %d %q, want 200 small", r.status, r.body)
	}
}

// TestHTTPWasmBadModuleNACKs checks that a module importing
// http_handler without the exports the ABI requires is refused at
// build, with the field path and the reason.
func TestHTTPWasmBadModuleNACKs(t *testing.T) {
	// One import, http_handler.log (i32, i32, i32) -> (), and nothing
	// exported.
	code := "\x00asm\x01\x00\x00\x00" +
		"\x01\x07\x01\x60\x03\x7f\x7f\x7f\x00" +
		"\x02\x14\x01\x0chttp_handler\x03log\x00\x00"
	c := &hcm.Compiler{Env: filters.Env{Log: testLog(t)}}
	fc := pluginConf(t, "httpwasm", "")
	fc.GetConfig().GetVmConfig().GetCode().GetLocal().Specifier = &corev3.DataSource_InlineBytes{InlineBytes: []byte(code)}
	_, err := c.Compile(hcmtest.HCM(t, hcmtest.Routes(hcmtest.Prefix("/", "backend")), wasmFilter(t, fc)))
	if err == nil || !strings.Contains(err.Error(), "config.vm_config.code") || !strings.Contains(err.Error(), "handle_request") {
		t.Errorf("compile error = %v, want the missing handle_request", err)
	}
}

// capture is a slog handler keeping the records it gets.
type capture struct {
	mu   sync.Mutex
	recs []string
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.recs = append(c.recs, r.Level.String()+" "+r.Message)
	c.mu.Unlock()
	return nil
}
func (c *capture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *capture) WithGroup(string) slog.Handler      { return c }

// TestHTTPWasmDirect drives the filter's phases as the chain does, for
// what a listener does not show: the guest's log lines and levels, and
// an IPv6 source address.
func TestHTTPWasmDirect(t *testing.T) {
	logs := &capture{}
	env := filters.Env{Log: slog.New(logs)}
	f, err := newHTTPWasm(t.Context(), pluginConf(t, "httpwasm", "features"), mustRead(t, pluginPath["httpwasm"]), env, Options{PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })

	x := exchange("x-test", "log")
	fl := f.NewFilter(x).(*hwStream)
	if st := fl.OnRequestHeaders(x, true); st != filters.Stop || x.LocalReply() == nil || x.LocalReply().Body != "110" {
		t.Fatalf("log: %v %+v, want a local reply 110 (debug and info enabled, none not)", st, x.LocalReply())
	}
	fl.OnDone(x)
	logs.mu.Lock()
	got := strings.Join(logs.recs, "\n")
	logs.mu.Unlock()
	if !strings.Contains(got, "INFO info from the guest") || !strings.Contains(got, "ERROR error from the guest") {
		t.Errorf("logs:\n%s", got)
	}

	x = exchange("x-test", "source")
	x.Downstream.RemoteAddr = netip.MustParseAddrPort("[::1]:4321")
	fl = f.NewFilter(x).(*hwStream)
	if st := fl.OnRequestHeaders(x, true); st != filters.Stop || x.LocalReply().Body != "[::1]:4321" {
		t.Errorf("source: %v %+v, want [::1]:4321", st, x.LocalReply())
	}
	fl.OnDone(x)
	for proto, want := range map[string]string{"HTTP/1.1": "HTTP/1.1", "HTTP/2": "HTTP/2.0", "HTTP/3": "HTTP/3.0"} {
		x = exchange("x-test", "proto")
		x.Request.Protocol = proto
		fl = f.NewFilter(x).(*hwStream)
		if st := fl.OnRequestHeaders(x, true); st != filters.Stop || x.LocalReply().Body != want {
			t.Errorf("protocol %s: %v %+v, want %s", proto, st, x.LocalReply(), want)
		}
		fl.OnDone(x)
	}

	// A stream that called next and never got a response (a reset)
	// still gets handle_response, with is_error.
	x = exchange("x-test", "reqctx")
	fl = f.NewFilter(x).(*hwStream)
	if st := fl.OnRequestHeaders(x, true); st != filters.Continue {
		t.Fatalf("reqctx: %v %+v", st, x.LocalReply())
	}
	fl.OnDone(x)
	if x.Response.Header.Get("X-Reqctx") != "42" || x.Response.Header.Get("X-Is-Error") != "1" {
		t.Errorf("handle_response at done: %v, want reqCtx 42 and is_error 1", x.Response.Header)
	}
	if v := f.pool.inst.at(0); v == nil || v.dead.Load() {
		t.Error("the instance died")
	}
	if f.active.Load() != 0 {
		t.Errorf("%d streams still active after done", f.active.Load())
	}
}

// TestHTTPWasmPoolShared checks that factories of one plugin in one
// gateway share their instances, that another configuration gets its
// own, and that the instances stop with the last factory using them.
func TestHTTPWasmPoolShared(t *testing.T) {
	env := filters.Env{Log: testLog(t)}
	code := mustRead(t, pluginPath["httpwasm"])
	build := func(conf string) *httpWasmFactory {
		t.Helper()
		f, err := newHTTPWasm(t.Context(), pluginConf(t, "httpwasm", conf), code, env, Options{PoolSize: 1, CloseDelay: -1})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	f1, f2, other := build("noop"), build("noop"), build("addheader")
	defer other.Close()
	if f1.pool != f2.pool {
		t.Error("two factories of one plugin have two pools")
	}
	if other.pool == f1.pool {
		t.Error("another configuration shares the pool")
	}
	p := f1.pool
	f1.Close()
	eventually(t, "the first factory let go", func() bool {
		hwPools.Lock()
		defer hwPools.Unlock()
		return p.refs == 1 || p.inst.closed.Load()
	})
	if p.inst.closed.Load() {
		t.Fatal("the pool stopped while a factory uses it")
	}
	x := exchange()
	fl := f2.NewFilter(x).(*hwStream)
	if st := fl.OnRequestHeaders(x, true); st != filters.Continue {
		t.Errorf("request on the remaining factory: %v", st)
	}
	fl.OnDone(x)
	f2.Close()
	eventually(t, "the pool stopped", p.inst.closed.Load)
}
