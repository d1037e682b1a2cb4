package wasm

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// startTrailerBackend answers with the request trailers it got as
// headers, and with an x-st response trailer.
func startTrailerBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Got-Rt", r.Trailer.Get("X-Rt"))
		w.Header().Set("X-Got-Rt-Added", r.Trailer.Get("X-Rt-Added"))
		w.Header().Set("Trailer", "X-St")
		io.WriteString(w, "body")
		w.Header().Set("X-St", "orig")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestABICases drives hostcalls the SDK test plugins leave out through a
// raw-ABI plugin in a connection manager chain: whole header maps,
// request trailers, a local reply's details, headers and gRPC status,
// closing the stream in either direction, pausing the response until an
// http call answers (resumed with proxy_continue_stream or ABI 0.1.0's
// proxy_continue_response), the call's answer maps and body, and
// shared data compare-and-swap.
func TestABICases(t *testing.T) {
	backend := startEcho(t, "backend")
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "audit", "audit"))},
		hcmtest.StaticCluster("backend", backend.Addr()), hcmtest.StaticCluster("body", startTrailerBackend(t)))

	t.Run("header map pairs", func(t *testing.T) {
		r := do(t, "GET", g.url+"/orig", "", "x-abi", "setpairs", "x-gone", "1")
		e := r.echo(t)
		if e.Method != "PUT" || e.Path != "/new" || e.Query != "q=1" {
			t.Errorf("upstream request %s %s ? %s, want PUT /new ? q=1", e.Method, e.Path, e.Query)
		}
		if e.Headers["x-only"] != "1" || e.Headers["x-size-ok"] != "true" || e.Headers["x-gone"] != "" || e.Headers["x-abi"] != "" {
			t.Errorf("upstream headers %v: want x-only and x-size-ok=true, without x-gone and x-abi", e.Headers)
		}
	})

	t.Run("num_headers", func(t *testing.T) {
		r := do(t, "GET", g.url+"/", "", "x-abi", "count", "x-multi", "a", "x-multi", "b")
		f := strings.Fields(r.body)
		if len(f) != 2 || f[0] != f[1] {
			t.Errorf("num_headers and the map's field count: %q, want them equal", r.body)
		}
	})

	t.Run("local reply", func(t *testing.T) {
		r := do(t, "POST", g.url+"/", "", "x-abi", "local", "content-type", "application/grpc")
		if r.status != 418 || r.body != "no" || r.header.Get("X-L") != "1" || r.header.Get("Grpc-Status") != "7" {
			t.Errorf("got %d %q %v, want 418 \"no\" with x-l and grpc-status 7", r.status, r.body, r.header)
		}
	})

	// A plugin before the one answering sees the answer's details.
	t.Run("local reply details", func(t *testing.T) {
		g := startGateway(t, []*hcmv3.HttpFilter{
			wasmFilter(t, pluginConf(t, "audit", "audit", rootID("first"))),
			wasmFilter(t, pluginConf(t, "audit", "audit", rootID("second"))),
		}, hcmtest.StaticCluster("backend", backend.Addr()))
		r := do(t, "GET", g.url+"/", "", "x-abi", "local", "x-abi-root", "second", "x-resp-props", "response/code_details,response/code")
		want := []string{
			"response/code_details 0 " + hex.EncodeToString([]byte("audit_said_no")),
			"response/code 0 " + hex.EncodeToString([]byte{0xa2, 1, 0, 0, 0, 0, 0, 0}),
		}
		if got := r.header.Values("X-Prop"); r.status != 418 || !slices.Equal(got, want) {
			t.Errorf("got %d, the first plugin read %q, want %q", r.status, got, want)
		}
	})

	t.Run("close request", func(t *testing.T) {
		before := backend.Requests()
		r, err := try("GET", g.url+"/", "", "x-abi", "close-request")
		if err == nil {
			t.Errorf("the client got %d %q, want the stream reset", r.status, r.body)
		}
		if backend.Requests() != before {
			t.Error("a closed request reached the upstream")
		}
	})

	t.Run("close response", func(t *testing.T) {
		before := backend.Requests()
		r, err := try("GET", g.url+"/", "", "x-abi", "close-response")
		if err == nil {
			t.Errorf("the client got %d %q, want the stream reset", r.status, r.body)
		}
		if backend.Requests() != before+1 {
			t.Error("the request did not reach the upstream before its response was closed")
		}
	})

	for _, c := range []string{"callout", "callout-v010"} {
		t.Run(c, func(t *testing.T) {
			r := do(t, "GET", g.url+"/", "", "x-abi", c)
			if r.status != 200 || r.echo(t).Path != "/" {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			f := strings.Fields(r.header.Get("X-Call"))
			if len(f) != 5 || f[0] != "200" || f[1] != "application/json" || f[2] == "0" || f[3] == "0" || f[4] != "0" {
				t.Errorf("x-call = %q, want the callout's status, content type, body size, header and trailer counts", r.header.Get("X-Call"))
			}
		})
	}

	// proxy_done from a stream: NOT_FOUND, nothing waits on it.
	t.Run("log level, clock, route cache, done", func(t *testing.T) {
		before := time.Now().UnixNano()
		r := do(t, "GET", g.url+"/", "", "x-abi", "misc")
		after := time.Now().UnixNano()
		// Test gateways log at debug level with -v, else not at all.
		level := "5"
		if testing.Verbose() {
			level = "1"
		}
		var now int64
		fmt.Sscanf(r.body[strings.Index(r.body, "now ")+4:], "%d", &now)
		want := "log_level 0\nlevel " + level + "\ntime 0\nnow " + strconv.FormatInt(now, 10) + "\nclear_route_cache 0\ndone 1\n"
		if r.body != want || now < before || now > after {
			t.Errorf("got\n%s\nwant\n%s(with now between %d and %d)", r.body, want, before, after)
		}
	})

	// The SDK's multiple_dispatches example: ten calls with an empty
	// :authority, as Envoy takes them, hold the response until all
	// answered.
	t.Run("multiple dispatches", func(t *testing.T) {
		before := backend.Requests()
		r := do(t, "GET", g.url+"/", "", "x-abi", "dispatches")
		if r.status != 200 || r.header.Get("Total-Dispatched") != "10" {
			t.Errorf("got %d, total-dispatched %q, x-dispatch-error %q", r.status, r.header.Get("Total-Dispatched"), r.header.Get("X-Dispatch-Error"))
		}
		if n := backend.Requests() - before; n != 11 {
			t.Errorf("backend saw %d requests, want the request and ten calls", n)
		}
	})

	// Envoy's compress and uncompress foreign functions, in zlib.
	t.Run("foreign functions", func(t *testing.T) {
		r := do(t, "GET", g.url+"/", "", "x-abi", "foreign")
		lines := strings.Split(r.body, "\n")
		if len(lines) < 6 || lines[0] != "compress 0" || lines[2] != "uncompress 0" || lines[3] != "back hello hello hello hello" ||
			lines[4] != "uncompress garbage 3" || lines[5] != "unknown 1" {
			t.Fatalf("got\n%s", r.body)
		}
		z, _ := hex.DecodeString(strings.TrimPrefix(lines[1], "compressed "))
		zr, err := zlib.NewReader(bytes.NewReader(z))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(zr); string(b) != "hello hello hello hello" {
			t.Errorf("compress gave %x, which inflates to %q", z, b)
		}
	})

	t.Run("shared data cas", func(t *testing.T) {
		r := do(t, "GET", g.url+"/", "", "x-abi", "cas")
		want := "set 0\nget 0\nvalue one\nstale 8\nfresh 0\nagain 8\nmissing 1\n"
		if r.body != want {
			t.Errorf("got\n%s\nwant\n%s", r.body, want)
		}
	})

	t.Run("trailers", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() { io.WriteString(pw, "chunk"); pw.Close() }()
		req, _ := http.NewRequest("POST", g.url+"/", pr)
		req.Host = "body"
		req.Trailer = http.Header{"X-Rt": {"tv"}}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("X-Saw-Request-Trailer"); got != "tv 1" {
			t.Errorf("the plugin saw request trailer x-rt %q, want the value and a count of 1", got)
		}
	})
}
