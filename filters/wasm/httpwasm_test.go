package wasm

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

func init() {
	testPlugins = append(testPlugins, struct {
		name, dir string
		reactor   bool
	}{"httpwasm", "httpwasm", true})
}

// startTCKBackend starts the backend of the http-wasm TCK: it echoes
// the request it got as response headers, x-httpwasm-next-method,
// x-httpwasm-next-uri and x-httpwasm-next-header-<name>-<i>.
func startTCKBackend(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-httpwasm-next-method", r.Method)
		w.Header().Set("x-httpwasm-next-uri", r.RequestURI)
		for k, vs := range r.Header {
			for i, v := range vs {
				w.Header().Add(fmt.Sprintf("x-httpwasm-next-header-%s-%d", k, i), v)
			}
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// envTCKGuest names another guest for TestHTTPWasmTCK to run the same
// cases against, such as the http-wasm TCK's own tck.wasm.
const envTCKGuest = "WAYGATE_HTTPWASM_TCK_GUEST"

// TestHTTPWasmTCK runs every case of the http-wasm TCK (its guest and
// its checks, rewritten here) through the gateway's chain: a guest
// built with standard Go against the raw ABI, a real listener and the
// TCK's echoing backend.
func TestHTTPWasmTCK(t *testing.T) {
	guest := "httpwasm"
	if path := os.Getenv(envTCKGuest); path != "" {
		pluginPath["tck-guest"], guest = path, "tck-guest"
	}
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, guest, "tck"))},
		hcmtest.StaticCluster("backend", startTCKBackend(t)))
	type tc struct {
		id, method, path, body string
		hdr                    []string
		// want are response headers the case expects.
		want map[string]string
		// wantBody is the response body the case expects, if any.
		wantBody string
	}
	var tests []tc
	tests = append(tests, tc{id: "get_protocol_version", path: "/get_protocol_version", wantBody: "HTTP/1.1"})
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"} {
		tests = append(tests, tc{id: "get_method/" + m, method: m})
	}
	tests = append(tests, tc{id: "set_method", want: map[string]string{"x-httpwasm-next-method": "POST"}})
	for name, uri := range map[string]string{
		"simple": "/simple", "simple/escaping": "/simple%26clean",
		"query": "/animal?name=panda", "query/escaping": "/disney?name=chip%26dale",
	} {
		tests = append(tests,
			tc{id: "get_uri/" + name, path: uri},
			tc{id: "set_uri/" + name, want: map[string]string{"x-httpwasm-next-uri": uri}})
	}
	tests = append(tests,
		tc{id: "get_header_values/request/lowercase-key", hdr: []string{"single-header", "value"}},
		tc{id: "get_header_values/request/mixedcase-key", hdr: []string{"Single-Header", "value"}},
		tc{id: "get_header_values/request/not-exists"},
		tc{id: "get_header_values/request/multiple-values", hdr: []string{"multi-header", "value1", "multi-header", "value2"}},
		tc{id: "get_header_names/request", hdr: []string{"a-header", "value1", "b-header", "2"}},
	)
	for _, fn := range []string{"set_header_value", "add_header_value", "remove_header"} {
		for _, which := range []string{"new", "existing"} {
			want := map[string]string{}
			switch fn + "/" + which {
			case "set_header_value/new":
				want["x-httpwasm-next-header-new-header-0"] = "value"
			case "set_header_value/existing":
				want["x-httpwasm-next-header-existing-header-0"] = "value"
				want["x-httpwasm-next-header-existing-header-1"] = ""
			case "add_header_value/new":
				want["x-httpwasm-next-header-new-header-0"] = "value"
			case "add_header_value/existing":
				want["x-httpwasm-next-header-existing-header-0"] = "bear"
				want["x-httpwasm-next-header-existing-header-1"] = "value"
			case "remove_header/new":
				want["x-httpwasm-next-header-existing-header-0"] = "bear"
			case "remove_header/existing":
				want["x-httpwasm-next-header-existing-header-0"] = ""
			}
			tests = append(tests, tc{id: fn + "/request/" + which, hdr: []string{"existing-header", "bear"}, want: want})
		}
	}
	for name, size := range map[string]int{"empty": 0, "small": 5, "medium": 2048, "large": 4096, "xlarge": 5000} {
		tests = append(tests, tc{id: "read_body/request/" + name, method: "POST", body: strings.Repeat("a", size)})
	}
	tests = append(tests, tc{id: "get_source_addr"})

	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			method, path := tt.method, tt.path
			if method == "" {
				method = "GET"
			}
			if path == "" {
				path = "/"
			}
			r := do(t, method, g.url+path, tt.body, append([]string{"x-httpwasm-tck-testid", tt.id}, tt.hdr...)...)
			if r.header.Get("x-httpwasm-tck-handled") != "1" {
				t.Errorf("x-httpwasm-tck-handled is missing: %d %v", r.status, r.header)
			}
			if r.status != 200 {
				t.Fatalf("status %d, failed: %q, body %q", r.status, r.header.Get("x-httpwasm-tck-failed"), r.body)
			}
			for k, v := range tt.want {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.wantBody != "" && method != "HEAD" && r.body != tt.wantBody {
				t.Errorf("body %q, want %q", r.body, tt.wantBody)
			}
		})
	}
}

// TestHTTPWasmFeatures checks each behavior of the ABI the TCK leaves
// out: responses the guest builds, reqCtx and is_error, the buffering
// features, body rewrites, rerouting, logging, config, trailers
// (offered; empty for a request without them; a trap when set without
// the feature), and the calls the ABI forbids after next.
func TestHTTPWasmFeatures(t *testing.T) {
	u, clusters := startUpstreams(t)
	// The guest answers log_enabled for debug, info and none.
	lg := testLog(t)
	logLevels := fmt.Sprintf("%d%d0", b2u(lg.Enabled(t.Context(), slog.LevelDebug)), b2u(lg.Enabled(t.Context(), slog.LevelInfo)))
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "httpwasm", "features"))}, clusters...)
	tests := []struct {
		test, host, method, body string
		status                   int
		header                   map[string]string
		// wantBody is the exact body; echo checks the echo backend's view.
		wantBody string
		echo     func(t *testing.T, r result)
	}{
		{test: "local", status: 401, header: map[string]string{"www-authenticate": `Basic realm="test"`}, wantBody: "denied"},
		{test: "empty-local", status: 200, wantBody: ""},
		{test: "config", status: 200, wantBody: "features"},
		{test: "host", host: "shop.example", status: 200, wantBody: "shop.example shop.example"},
		{test: "log", status: 200, wantBody: logLevels},
		{test: "trailers", status: 200, wantBody: "4 0"},
		{test: "reqctx", status: 200, header: map[string]string{"x-reqctx": "42", "x-is-error": "0", "x-status": "200"},
			echo: func(t *testing.T, r result) {
				if names := r.header.Get("x-names"); !strings.Contains(names, "content-type") {
					t.Errorf("x-names = %q, want the response's header names", names)
				}
			}},
		{test: "bufresp", status: 203, echo: func(t *testing.T, r result) {
			if !strings.Contains(r.body, `"SERVICE": "BACKEND"`) {
				t.Errorf("body %q is not the upper-cased echo", r.body)
			}
			if r.header.Get("x-original-length") != fmt.Sprint(len(r.body)) || r.header.Get("Content-Length") != fmt.Sprint(len(r.body)) {
				t.Errorf("lengths: original %s, content-length %s, body %d", r.header.Get("x-original-length"), r.header.Get("Content-Length"), len(r.body))
			}
		}},
		{test: "bufreq", host: "body", method: "POST", body: "the request body", status: 200, wantBody: "the request body"},
		{test: "readnobuf", host: "body", method: "POST", body: "consumed", status: 200, wantBody: ""},
		{test: "bufreq-part", host: "body", method: "POST", body: "read in part", status: 200, wantBody: "read in part"},
		{test: "readnobuf-part", host: "body", method: "POST", body: "read in part", status: 200, wantBody: " in part"},
		{test: "writereq", host: "body", method: "POST", body: "original", status: 200, wantBody: "replaced body"},
		{test: "prebody", host: "body", method: "POST", body: "upstream", status: 200, wantBody: "pre:upstream"},
		{test: "route", status: 200, echo: func(t *testing.T, r result) {
			if s := r.echo(t).Service; s != "canary" {
				t.Errorf("served by %q, want canary (rerouted by the new host)", s)
			}
		}},
		{test: "after-next-request", status: 500, wantBody: "wasm plugin failed"},
		{test: "after-next-response", status: 500, wantBody: "wasm plugin failed"},
		{test: "bad-uri", status: 500, wantBody: "wasm plugin failed"},
		{test: "trailer-set", status: 500, wantBody: "wasm plugin failed"},
		{test: "bad-status", status: 500, wantBody: "wasm plugin failed"},
		{test: "future", status: 500, wantBody: "wasm plugin failed"},
	}
	for _, tt := range tests {
		t.Run(tt.test, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			hdr := []string{"x-test", tt.test}
			if tt.host != "" {
				hdr = append(hdr, "host", tt.host)
			}
			r := do(t, method, g.url+"/", tt.body, hdr...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d (body %q)", r.status, tt.status, r.body)
			}
			for k, v := range tt.header {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.echo == nil && r.body != tt.wantBody {
				t.Errorf("body %q, want %q", r.body, tt.wantBody)
			}
			if tt.echo != nil {
				tt.echo(t, r)
			}
		})
	}
	if n := u.canary.Requests(); n != 1 {
		t.Errorf("canary got %d requests, want 1", n)
	}
	if got := g.store.Counter("wasm.httpwasm.vm_failures").Value(); got != 6 {
		t.Errorf("vm_failures = %d, want 6 (one per forbidden call)", got)
	}
}

// TestHTTPWasmIsError checks that handle_response hears of a response
// the gateway made because the upstream failed.
func TestHTTPWasmIsError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "httpwasm", "features"))},
		hcmtest.StaticCluster("backend", dead))
	r := do(t, "GET", g.url+"/", "", "x-test", "reqctx")
	if r.status != 503 || r.header.Get("x-is-error") != "1" || r.header.Get("x-status") != "503" {
		t.Errorf("got %d is_error=%q status=%q, want 503 is_error=1", r.status, r.header.Get("x-is-error"), r.header.Get("x-status"))
	}
}

// TestHTTPWasmStartFailureNACKs checks that a guest failing while it
// starts is refused with the reason, so the config is NACKed.
func TestHTTPWasmStartFailureNACKs(t *testing.T) {
	_, err := newHTTPWasm(t.Context(), pluginConf(t, "httpwasm", "startpanic"), mustRead(t, pluginPath["httpwasm"]), envForTest(t), Options{PoolSize: 1})
	if err == nil || !strings.Contains(err.Error(), `plugin "httpwasm"`) || !strings.Contains(err.Error(), "_initialize") {
		t.Errorf("error = %v, want the start's failure", err)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
