package wasm

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// startTrailersBackend starts the TCK's echoing backend for the trailer
// cases: it reads the whole request body, echoes it as
// x-httpwasm-next-body and the request trailers as
// x-httpwasm-next-trailer-<name>-<i>, and, for a response_trailers
// case (or a features mode trailers-* one), answers with a declared trailer (existing-trailer: bear) and an
// undeclared one (grpc-status: 0).
func startTrailersBackend(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("x-httpwasm-next-body", string(b))
		for k, vs := range r.Trailer {
			for i, v := range vs {
				w.Header().Add(fmt.Sprintf("x-httpwasm-next-trailer-%s-%d", k, i), v)
			}
		}
		if !strings.Contains(r.Header.Get("x-httpwasm-tck-testid"), "/response_trailers") && !strings.HasPrefix(r.Header.Get("x-test"), "trailers-") {
			return
		}
		w.Header().Set("Trailer", "Existing-Trailer")
		_, _ = io.WriteString(w, "body")
		w.Header().Set("Existing-Trailer", "bear")
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestHTTPWasmTCKTrailers runs the header cases of the http-wasm TCK on
// the trailer kinds, through a real listener and a backend that reads
// the request trailers and sends response trailers: request trailers
// are readable in handle_request (the host reads the body for them,
// which still reaches the guest and the upstream) and changed before
// next; response trailers are readable and changed in handle_response
// with buffer_response, or set before next.
func TestHTTPWasmTCKTrailers(t *testing.T) {
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "httpwasm", "tck"))},
		hcmtest.StaticCluster("backend", startTrailersBackend(t)))
	const next = "x-httpwasm-next-trailer-"
	tests := []struct {
		id string
		// trailer are the request's trailers, sent after a chunked body.
		trailer http.Header
		// sized sends the body with a Content-Length, and no trailers.
		sized bool
		// want are response headers (the backend's echo) the case expects.
		want map[string]string
		// wantTrailer are the response trailers the client must get.
		wantTrailer http.Header
	}{
		{id: "get_header_names/request_trailers", trailer: http.Header{"A-Trailer": {"1"}, "B-Trailer": {"2"}}},
		{id: "get_header_values/request_trailers", trailer: http.Header{"Single-Trailer": {"value"}}},
		{id: "read_body/request_trailers", trailer: http.Header{"Single-Trailer": {"value"}},
			want: map[string]string{"x-httpwasm-next-body": "aaaaa", next + "Single-Trailer-0": "value"}},
		{id: "set_header_value/request_trailers/new", trailer: http.Header{"Existing-Trailer": {"bear"}},
			want: map[string]string{next + "New-Trailer-0": "value", next + "Existing-Trailer-0": "bear", "x-httpwasm-next-body": "aaaaa"}},
		{id: "set_header_value/request_trailers/existing", trailer: http.Header{"Existing-Trailer": {"bear"}},
			want: map[string]string{next + "Existing-Trailer-0": "value", next + "Existing-Trailer-1": ""}},
		{id: "set_header_value/request_trailers/new", sized: true,
			want: map[string]string{next + "New-Trailer-0": "value", "x-httpwasm-next-body": "aaaaa"}},
		{id: "add_header_value/request_trailers/new", trailer: http.Header{"Existing-Trailer": {"bear"}},
			want: map[string]string{next + "New-Trailer-0": "value", next + "Existing-Trailer-0": "bear"}},
		{id: "add_header_value/request_trailers/existing", trailer: http.Header{"Existing-Trailer": {"bear"}},
			want: map[string]string{next + "Existing-Trailer-0": "bear", next + "Existing-Trailer-1": "value"}},
		{id: "remove_header/request_trailers/new", trailer: http.Header{"Existing-Trailer": {"bear"}},
			want: map[string]string{next + "Existing-Trailer-0": "bear"}},
		{id: "remove_header/request_trailers/existing", trailer: http.Header{"Existing-Trailer": {"bear"}},
			want: map[string]string{next + "Existing-Trailer-0": "", "x-httpwasm-next-body": "aaaaa"}},
		{id: "get_header_names/response_trailers", wantTrailer: http.Header{"Existing-Trailer": {"bear"}, "Grpc-Status": {"0"}}},
		{id: "get_header_values/response_trailers", wantTrailer: http.Header{"Existing-Trailer": {"bear"}}},
		{id: "set_header_value/response_trailers/new", wantTrailer: http.Header{"New-Trailer": {"value"}, "Existing-Trailer": {"bear"}}},
		{id: "set_header_value/response_trailers/existing", wantTrailer: http.Header{"Existing-Trailer": {"value"}}},
		{id: "set_header_value/response_trailers/before_next", wantTrailer: http.Header{"New-Trailer": {"value"}, "Grpc-Status": {"0"}}},
		{id: "add_header_value/response_trailers/new", wantTrailer: http.Header{"New-Trailer": {"value"}}},
		{id: "add_header_value/response_trailers/existing", wantTrailer: http.Header{"Existing-Trailer": {"bear", "value"}}},
		{id: "remove_header/response_trailers/new", wantTrailer: http.Header{"Existing-Trailer": {"bear"}}},
		{id: "remove_header/response_trailers/existing", wantTrailer: http.Header{"Existing-Trailer": nil, "Grpc-Status": {"0"}}},
	}
	client := hcmtest.Client()
	for _, tt := range tests {
		name := tt.id
		if tt.sized {
			name += "/sized"
		}
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest("POST", g.url+"/", io.NopCloser(strings.NewReader("aaaaa")))
			if err != nil {
				t.Fatal(err)
			}
			// A body of unknown length goes chunked, with the trailers.
			req.ContentLength = -1
			if tt.sized {
				req.ContentLength = 5
			}
			req.Header.Set("x-httpwasm-tck-testid", tt.id)
			req.Trailer = tt.trailer
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if _, err := io.ReadAll(resp.Body); err != nil {
				t.Fatal(err)
			}
			if resp.Header.Get("x-httpwasm-tck-handled") != "1" {
				t.Errorf("x-httpwasm-tck-handled is missing: %d %v", resp.StatusCode, resp.Header)
			}
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, failed: %q", resp.StatusCode, resp.Header.Get("x-httpwasm-tck-failed"))
			}
			for k, v := range tt.want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for k, v := range tt.wantTrailer {
				if got := resp.Trailer.Values(k); strings.Join(got, ",") != strings.Join(v, ",") {
					t.Errorf("trailer %s = %q, want %q (trailers %v)", k, got, v, resp.Trailer)
				}
			}
		})
	}
}

// TestHTTPWasmTrailersStalledClient checks that a client that stops
// before its trailers, while the host reads the body for a guest that
// asked for them, gets 408 without costing the instance.
func TestHTTPWasmTrailersStalledClient(t *testing.T) {
	t.Setenv(EnvCallTimeout, "100ms")
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "httpwasm", "tck"))},
		hcmtest.StaticCluster("backend", startTrailersBackend(t)))
	c, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nx-httpwasm-tck-testid: get_header_values/request_trailers\r\nTransfer-Encoding: chunked\r\n\r\n5\r\naaaaa\r\n")
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

// TestHTTPWasmTrailersWithoutFeatures checks the trailer kinds for a
// guest short of a feature: without trailers, handle_response with
// buffer_response reads none and the upstream's reach the client
// untouched; without buffer_response, handle_response runs before the
// trailers came, and changing one traps, which fails the stream.
func TestHTTPWasmTrailersWithoutFeatures(t *testing.T) {
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "httpwasm", "features"))},
		hcmtest.StaticCluster("backend", startTrailersBackend(t)))
	tests := []struct {
		test        string
		status      int
		header      map[string]string
		wantTrailer http.Header
	}{
		{test: "trailers-off", status: 200, header: map[string]string{"x-trailer-names": "0"},
			wantTrailer: http.Header{"Existing-Trailer": {"bear"}, "Grpc-Status": {"0"}}},
		// The guest traps only when it read no trailers.
		{test: "trailers-unbuffered", status: 500},
	}
	for _, tt := range tests {
		t.Run(tt.test, func(t *testing.T) {
			req, err := http.NewRequest("GET", g.url+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("x-test", tt.test)
			resp, err := hcmtest.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if _, err := io.ReadAll(resp.Body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			for k, v := range tt.header {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for k, v := range tt.wantTrailer {
				if got := resp.Trailer.Values(k); strings.Join(got, ",") != strings.Join(v, ",") {
					t.Errorf("trailer %s = %q, want %q (trailers %v)", k, got, v, resp.Trailer)
				}
			}
		})
	}
}
