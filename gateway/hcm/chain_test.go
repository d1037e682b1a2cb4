package hcm_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
	"github.com/waygate/waygate/gateway/stats"
)

// withPerFilter returns r with typed_per_filter_config set.
func withPerFilter(r *routev3.Route, cfg map[string]*anypb.Any) *routev3.Route {
	r.TypedPerFilterConfig = cfg
	return r
}

func TestFilterChain(t *testing.T) {
	echo := startEcho(t, "echo")
	bodies := startBodyEcho(t)
	clusters := []*clusterSpec{{"echo", echo.Addr()}, {"bodies", bodies}}

	tests := []struct {
		name    string
		filters func(t *testing.T) []*hcmv3.HttpFilter
		routes  []*routev3.Route
		limit   int
		method  string
		path    string
		body    string
		check   func(t *testing.T, r result, reached int64)
	}{{
		name: "request filters run in chain order, response filters in reverse",
		filters: func(t *testing.T) []*hcmv3.HttpFilter {
			return []*hcmv3.HttpFilter{tag(t, "a", ""), tag(t, "b", ""), tag(t, "c", "")}
		},
		path: "/",
		check: func(t *testing.T, r result, reached int64) {
			if got := r.echo(t).Headers["x-order"]; got != "a, b, c" {
				t.Errorf("upstream x-order = %q, want a, b, c", got)
			}
			if got := strings.Join(r.header.Values("X-Resp-Order"), ","); got != "c,b,a" {
				t.Errorf("x-resp-order = %q, want c,b,a", got)
			}
		},
	}, {
		name: "a local reply skips later filters and the router, and passes every response filter as Envoy's does",
		filters: func(t *testing.T) []*hcmv3.HttpFilter {
			return []*hcmv3.HttpFilter{tag(t, "a", ""), tag(t, "b", "reply=401"), tag(t, "c", "")}
		},
		path: "/",
		check: func(t *testing.T, r result, reached int64) {
			if r.status != 401 || r.body != "denied by b" {
				t.Errorf("got %d %q, want 401 %q", r.status, r.body, "denied by b")
			}
			if got := strings.Join(r.header.Values("X-Resp-Order"), ","); got != "c,b,a" {
				t.Errorf("x-resp-order = %q, want c,b,a: the answering filter and the one after it see the reply too", got)
			}
			if reached != 0 {
				t.Errorf("backend got %d requests, want none", reached)
			}
			if r.header.Get("Content-Length") != strconv.Itoa(len("denied by b")) {
				t.Errorf("content-length = %q", r.header.Get("Content-Length"))
			}
		},
	}, {
		name: "a buffering body filter gets the whole body and rewrites it",
		filters: func(t *testing.T) []*hcmv3.HttpFilter {
			return []*hcmv3.HttpFilter{tag(t, "a", "rewrite-req=rewritten!")}
		},
		method: "POST",
		path:   "/bodies",
		body:   strings.Repeat("x", 100<<10),
		check: func(t *testing.T, r result, reached int64) {
			if want := "cl=10 body=rewritten!"; r.body != want {
				t.Errorf("backend saw %.80q, want %q", r.body, want)
			}
		},
	}, {
		name: "StopAndBuffer from request headers completes the body before the router",
		filters: func(t *testing.T) []*hcmv3.HttpFilter {
			return []*hcmv3.HttpFilter{tag(t, "a", "buffer-hdr,buffer-req,see-body")}
		},
		method: "POST",
		path:   "/",
		body:   strings.Repeat("0123456789", 1000),
		check: func(t *testing.T, r result, reached int64) {
			e := r.echo(t)
			if e.Headers["x-body-seen"] != strings.Repeat("0123456789", 1000) {
				t.Errorf("x-body-seen has %d bytes, want the whole 10000-byte body", len(e.Headers["x-body-seen"]))
			}
			if e.BodyBytes != 10000 {
				t.Errorf("backend got %d body bytes, want 10000", e.BodyBytes)
			}
		},
	}, {
		name:    "a body over the buffer limit is refused with 413",
		filters: func(t *testing.T) []*hcmv3.HttpFilter { return []*hcmv3.HttpFilter{tag(t, "a", "buffer-req")} },
		limit:   1024,
		method:  "POST",
		path:    "/",
		body:    strings.Repeat("x", 4096),
		check: func(t *testing.T, r result, reached int64) {
			if r.status != 413 {
				t.Errorf("status = %d, want 413", r.status)
			}
			if reached != 0 {
				t.Errorf("backend got %d requests, want none", reached)
			}
		},
	}, {
		name:    "a buffering response body filter rewrites the body with a matching Content-Length",
		filters: func(t *testing.T) []*hcmv3.HttpFilter { return []*hcmv3.HttpFilter{tag(t, "a", "rewrite-resp=new")} },
		method:  "POST",
		path:    "/bodies",
		body:    "hello",
		check: func(t *testing.T, r result, reached int64) {
			if want := "NEW:CL=5 BODY=HELLO"; r.body != want {
				t.Errorf("body = %q, want %q", r.body, want)
			}
			if got := r.header.Get("Content-Length"); got != strconv.Itoa(len(r.body)) {
				t.Errorf("content-length = %q for a %d-byte body", got, len(r.body))
			}
		},
	}, {
		name:    "a route disabling a filter skips it on that route only",
		filters: func(t *testing.T) []*hcmv3.HttpFilter { return []*hcmv3.HttpFilter{tag(t, "a", ""), tag(t, "b", "")} },
		routes: []*routev3.Route{withPerFilter(hcmtest.Prefix("/off", "echo"), map[string]*anypb.Any{
			"a": hcmtest.Any(t, &routev3.FilterConfig{Disabled: true}),
		})},
		path: "/off",
		check: func(t *testing.T, r result, reached int64) {
			if got := r.echo(t).Headers["x-order"]; got != "b" {
				t.Errorf("x-order = %q, want b alone", got)
			}
		},
	}, {
		name:    "the same chain runs the filter on other routes",
		filters: func(t *testing.T) []*hcmv3.HttpFilter { return []*hcmv3.HttpFilter{tag(t, "a", ""), tag(t, "b", "")} },
		routes: []*routev3.Route{withPerFilter(hcmtest.Prefix("/off", "echo"), map[string]*anypb.Any{
			"a": hcmtest.Any(t, &routev3.FilterConfig{Disabled: true}),
		})},
		path: "/on",
		check: func(t *testing.T, r result, reached int64) {
			if got := r.echo(t).Headers["x-order"]; got != "a, b" {
				t.Errorf("x-order = %q, want a, b", got)
			}
		},
	}, {
		name: "a filter disabled in the chain runs where a route configures it",
		filters: func(t *testing.T) []*hcmv3.HttpFilter {
			return []*hcmv3.HttpFilter{disabled(tag(t, "a", "")), tag(t, "b", "")}
		},
		routes: []*routev3.Route{withPerFilter(hcmtest.Prefix("/on", "echo"), map[string]*anypb.Any{
			"a": hcmtest.Any(t, wrapperspb.String("per-route")),
		})},
		path: "/on",
		check: func(t *testing.T, r result, reached int64) {
			e := r.echo(t)
			if got := e.Headers["x-order"]; got != "a, b" {
				t.Errorf("x-order = %q, want a, b", got)
			}
			if got := e.Headers["x-route-config-a"]; got != "per-route" {
				t.Errorf("per-route config = %q, want per-route", got)
			}
		},
	}, {
		name: "a filter disabled in the chain stays off elsewhere",
		filters: func(t *testing.T) []*hcmv3.HttpFilter {
			return []*hcmv3.HttpFilter{disabled(tag(t, "a", "")), tag(t, "b", "")}
		},
		routes: []*routev3.Route{withPerFilter(hcmtest.Prefix("/on", "echo"), map[string]*anypb.Any{
			"a": hcmtest.Any(t, wrapperspb.String("per-route")),
		})},
		path: "/elsewhere",
		check: func(t *testing.T, r result, reached int64) {
			if got := r.echo(t).Headers["x-order"]; got != "b" {
				t.Errorf("x-order = %q, want b alone", got)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := echo.Requests()
			routes := append(tt.routes, hcmtest.Prefix("/bodies", "bodies"), hcmtest.Prefix("/", "echo"))
			gw := hcmtest.Start(t, hcmtest.Options{
				HCM:         hcmtest.HCM(t, hcmtest.Routes(routes...), tt.filters(t)...),
				Clusters:    staticClusters(clusters),
				BufferLimit: tt.limit,
			})
			method := tt.method
			if method == "" {
				method = "GET"
			}
			r := do(t, hcmtest.Client(), method, gw.URL+tt.path, tt.body)
			tt.check(t, r, echo.Requests()-before)
		})
	}
}

func TestFilterPanicFailsOneRequest(t *testing.T) {
	echo := startEcho(t, "echo")
	// With see-body the chain has a request body filter, which turns on
	// the stream's filter lock: a panic must not leave it held.
	for _, spec := range []string{"panic", "panic-resp", "panic-resp,see-body", "panic-body"} {
		t.Run(spec, func(t *testing.T) {
			panics := &stats.Counter{}
			gw := hcmtest.Start(t, hcmtest.Options{
				HCM: hcmtest.HCM(t, hcmtest.Routes(
					withPerFilter(hcmtest.Prefix("/safe", "echo"), map[string]*anypb.Any{"p": hcmtest.Any(t, &routev3.FilterConfig{Disabled: true})}),
					hcmtest.Prefix("/", "echo"),
				), tag(t, "a", ""), tag(t, "p", spec)),
				Clusters: staticClusters([]*clusterSpec{{"echo", echo.Addr()}}),
				Panics:   panics,
			})
			c := hcmtest.Client()
			r := do(t, c, "POST", gw.URL+"/boom", "body")
			if r.status != 500 || r.body != "filter panic" {
				t.Errorf("panicking filter: got %d %q, want 500 %q", r.status, r.body, "filter panic")
			}
			// A body of unknown length streams: its filters run while
			// the router sends it, off the handler's goroutine.
			req, _ := http.NewRequest("POST", gw.URL+"/boom", io.MultiReader(strings.NewReader("streamed")))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 500 || string(b) != "filter panic" {
				t.Errorf("streamed body: got %d %q, want 500 %q", resp.StatusCode, b, "filter panic")
			}
			if r := do(t, c, "GET", gw.URL+"/safe", ""); r.status != 200 {
				t.Errorf("next request: status %d, want 200", r.status)
			}
			if panics.Value() != 2 {
				t.Errorf("panic counter = %d, want 2", panics.Value())
			}
		})
	}
}

func TestCompileChain(t *testing.T) {
	unknown := hcmtest.Filter(t, "unknown", wrapperspb.Int64(1))
	optional := hcmtest.Filter(t, "unknown", wrapperspb.Int64(1))
	optional.IsOptional = true
	tests := []struct {
		name    string
		filters []*hcmv3.HttpFilter
		wantErr string // "" for success
	}{
		{"router alone", []*hcmv3.HttpFilter{hcmtest.RouterFilter(t)}, ""},
		{"an unknown optional filter is skipped", []*hcmv3.HttpFilter{optional, hcmtest.RouterFilter(t)}, ""},
		{"an unknown required filter fails naming its index", []*hcmv3.HttpFilter{tag(t, "a", ""), unknown, hcmtest.RouterFilter(t)}, `http_filters[1] "unknown"`},
		{"the router must be last", []*hcmv3.HttpFilter{hcmtest.RouterFilter(t), tag(t, "a", "")}, "router must be the last filter"},
		{"the chain must end with the router", []*hcmv3.HttpFilter{tag(t, "a", "")}, "the last filter must be the router"},
		{"an empty chain fails", nil, "http_filters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := hcmtest.HCM(t, hcmtest.Routes(), tt.filters...)
			m.HttpFilters = tt.filters
			c := &hcm.Compiler{}
			_, err := c.Compile(m)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Compile: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Compile succeeded, want an error with %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Compile error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func disabled(f *hcmv3.HttpFilter) *hcmv3.HttpFilter {
	f.Disabled = true
	return f
}

// TestFullDuplex checks that a request body streams while its response
// does, for a client that waits for the response before it sends (a
// chat over one long POST, a bidirectional gRPC stream), with and
// without a body filter in the chain.
func TestFullDuplex(t *testing.T) {
	addr := startDuplexEcho(t)
	for _, c := range []struct {
		name   string
		client *http.Client
		chain  []string // test filter specs
	}{
		{"HTTP/1.1", hcmtest.Client(), nil},
		{"h2c", hcmtest.H2CClient(), nil},
		{"HTTP/1.1 with a body filter", hcmtest.Client(), []string{"see-body"}},
		{"h2c with a body filter", hcmtest.H2CClient(), []string{"see-body"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var fs []*hcmv3.HttpFilter
			for i, spec := range c.chain {
				fs = append(fs, tag(t, string(rune('a'+i)), spec))
			}
			gw := hcmtest.Start(t, hcmtest.Options{
				HCM:      hcmtest.HCM(t, hcmtest.Routes(hcmtest.Prefix("/", "s")), fs...),
				Clusters: staticClusters([]*clusterSpec{{"s", addr}}),
			})
			pr, pw := io.Pipe()
			defer pw.Close()
			req, _ := http.NewRequest("POST", gw.URL+"/", pr) // unknown length
			resp, err := c.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			// The client has sent no byte yet, and has the response head.
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			br := bufio.NewReader(resp.Body)
			for _, msg := range []string{"ping\n", "pong\n"} {
				io.WriteString(pw, msg)
				got, err := br.ReadString('\n')
				if err != nil || got != msg {
					t.Fatalf("echo of %q: %q, %v", msg, got, err)
				}
			}
		})
	}
}

// startDuplexEcho answers 200 at once, then echoes the request body as
// it arrives.
func startDuplexEcho(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex()
		w.WriteHeader(200)
		rc.Flush()
		buf := make([]byte, 1024)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
				rc.Flush()
			}
			if err != nil {
				return
			}
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestFilterCallbacksAreSerialized checks that a filter never sees two
// callbacks at once, although the request body streams upstream on
// another goroutine than the response: filters (and the Wasm VMs behind
// them) may keep per-stream state without locks.
func TestFilterCallbacksAreSerialized(t *testing.T) {
	addr := startDuplexEcho(t)
	gw := hcmtest.Start(t, hcmtest.Options{
		HCM:      hcmtest.HCM(t, hcmtest.Routes(hcmtest.Prefix("/", "s")), tag(t, "w", "watch")),
		Clusters: staticClusters([]*clusterSpec{{"s", addr}}),
	})
	before := overlaps.Load()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", gw.URL+"/", pr)
	resp, err := hcmtest.H2CClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	const n = 300
	go func() {
		for i := 0; i < n; i++ {
			io.WriteString(pw, "chunk\n")
		}
		pw.Close()
	}()
	b, err := io.ReadAll(resp.Body)
	if err != nil || len(b) != n*len("chunk\n") {
		t.Fatalf("echoed %d bytes, %v; want %d", len(b), err, n*len("chunk\n"))
	}
	if got := overlaps.Load() - before; got != 0 {
		t.Errorf("%d filter callbacks overlapped another", got)
	}
}

// TestLocalReplyToStreamedBody checks that a local reply to a request
// whose body was never read reaches the client intact, however the
// body's sending and the reply interleave: the connection must not be
// closed over unread body bytes, which would reset it.
func TestLocalReplyToStreamedBody(t *testing.T) {
	echo := startEcho(t, "echo")
	gw := hcmtest.Start(t, hcmtest.Options{
		HCM:      hcmtest.HCM(t, hcmtest.Routes(hcmtest.Prefix("/", "echo")), tag(t, "auth", "reply=401")),
		Clusters: staticClusters([]*clusterSpec{{"echo", echo.Addr()}}),
	})
	c := hcmtest.Client()
	for i := 0; i < 200; i++ {
		// A reader of unknown length: the body goes chunked.
		req, _ := http.NewRequest("POST", gw.URL+"/", io.MultiReader(strings.NewReader("some body")))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || string(b) != "denied by auth" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
	}
}
