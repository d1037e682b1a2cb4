package compressor

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	brotliv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/brotli/compressor/v3"
	gzipv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/gzip/compressor/v3"
	zstdv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/zstd/compressor/v3"
	compressorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/compressor/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

func startBackend(t *testing.T) *backend.Server {
	t.Helper()
	b, err := backend.Start(backend.Options{Service: "web", Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// perRoute is a route forwarding prefix to cluster with a
// CompressorPerRoute.
func perRoute(t *testing.T, prefix, cluster string, pb *compressorv3.CompressorPerRoute) *routev3.Route {
	r := hcmtest.Prefix(prefix, cluster)
	r.TypedPerFilterConfig = map[string]*anypb.Any{FilterName: hcmtest.Any(t, pb)}
	return r
}

// direct is a route answering with a direct response, a local reply of
// the router that passes the response filters.
func direct(prefix, body string) *routev3.Route {
	return &routev3.Route{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
			Status: 200,
			Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: body}},
		}},
	}
}

// gateway serves a chain of the compressor cfg and the router, with
// routes, in front of the clusters name → addr.
func gateway(t *testing.T, cfg *compressorv3.Compressor, routes []*routev3.Route, clusters map[string]string) *hcmtest.Gateway {
	t.Helper()
	o := hcmtest.Options{HCM: hcmtest.HCM(t, hcmtest.Routes(routes...), hcmtest.Filter(t, FilterName, cfg))}
	for name, addr := range clusters {
		o.Clusters = append(o.Clusters, hcmtest.StaticCluster(name, addr))
	}
	return hcmtest.Start(t, o)
}

type reply struct {
	resp *http.Response
	raw  []byte // the body as it arrived
}

func get(t *testing.T, url string, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := hcmtest.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp: resp, raw: raw}
}

// decode undoes the response's content-encoding.
func decode(t *testing.T, r reply) []byte {
	t.Helper()
	var rd io.Reader
	switch enc := r.resp.Header.Get("Content-Encoding"); enc {
	case "":
		return r.raw
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(r.raw))
		if err != nil {
			t.Fatal(err)
		}
		rd = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(r.raw))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		rd = zr
	case "br":
		rd = brotli.NewReader(bytes.NewReader(r.raw))
	default:
		t.Fatalf("unexpected content-encoding %q", enc)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("decode %s: %v", r.resp.Header.Get("Content-Encoding"), err)
	}
	return b
}

// octet is a config compressing application/octet-stream too, so that
// the backend's sized bodies (a known pattern) can be compared.
func octet(t testing.TB, library proto.Message) *compressorv3.Compressor {
	return &compressorv3.Compressor{
		CompressorLibrary: lib(t, "lib", library),
		ResponseDirectionConfig: &compressorv3.Compressor_ResponseDirectionConfig{CommonConfig: &compressorv3.Compressor_CommonDirectionConfig{
			ContentType: []string{"application/octet-stream", "application/json", "text/plain"},
		}},
	}
}

func pattern(n int) string {
	const p = "abcdefghijklmnopqrstuvwxyz012345"
	return strings.Repeat(p, n/len(p)+1)[:n]
}

func TestLibrariesEndToEnd(t *testing.T) {
	be := startBackend(t)
	for _, tt := range []struct {
		name     string
		library  proto.Message
		encoding string
	}{
		{"gzip", &gzipv3.Gzip{CompressionLevel: gzipv3.Gzip_BEST_SPEED}, "gzip"},
		{"gzip default", &gzipv3.Gzip{MemoryLevel: wrapperspb.UInt32(9), WindowBits: wrapperspb.UInt32(15)}, "gzip"},
		{"zstd", &zstdv3.Zstd{EnableChecksum: true}, "zstd"},
		{"brotli", &brotliv3.Brotli{Quality: wrapperspb.UInt32(5)}, "br"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gw := gateway(t, octet(t, tt.library), []*routev3.Route{hcmtest.Prefix("/", "web")}, map[string]string{"web": be.Addr()})
			for _, size := range []int{100, 70000, 300000} {
				r := get(t, gw.URL+"/sized", "Accept-Encoding", "gzip, zstd, br", "x-echo-body-size", itoa(size))
				h := r.resp.Header
				if r.resp.StatusCode != 200 || h.Get("Content-Encoding") != tt.encoding {
					t.Fatalf("size %d: status %d content-encoding %q", size, r.resp.StatusCode, h.Get("Content-Encoding"))
				}
				if h.Get("Content-Length") != "" || r.resp.ContentLength != -1 {
					t.Errorf("size %d: content-length %q (%d) on a compressed response", size, h.Get("Content-Length"), r.resp.ContentLength)
				}
				if h.Get("Vary") != "Accept-Encoding" {
					t.Errorf("size %d: vary %q", size, h.Get("Vary"))
				}
				if got := decode(t, r); string(got) != pattern(size) {
					t.Errorf("size %d: decompressed %d bytes that differ from the backend's body", size, len(got))
				}
				if size > 1000 && len(r.raw) >= size/4 {
					t.Errorf("size %d: %d compressed bytes, the pattern should compress far better", size, len(r.raw))
				}
			}
			// The backend's JSON echo: the upstream still saw the
			// client's accept-encoding.
			r := get(t, gw.URL+"/echo", "Accept-Encoding", tt.encoding)
			var echo backend.Echo
			if err := json.Unmarshal(decode(t, r), &echo); err != nil {
				t.Fatalf("echo: %v", err)
			}
			if echo.Service != "web" || echo.Headers["accept-encoding"] != tt.encoding {
				t.Errorf("echo = %+v", echo)
			}
		})
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestHeadersEndToEnd(t *testing.T) {
	be := startBackend(t)
	weaken := gzipConfig(t, func(rd *compressorv3.Compressor_ResponseDirectionConfig) { rd.WeakenEtagOnCompress = true })
	gw := gateway(t, weaken, []*routev3.Route{hcmtest.Prefix("/", "web")}, map[string]string{"web": be.Addr()})
	t.Run("strong etag weakened, vary merged", func(t *testing.T) {
		r := get(t, gw.URL+"/", "Accept-Encoding", "gzip", "x-echo-header", `etag="v1"`, "x-echo-header", "vary=Origin")
		h := r.resp.Header
		if h.Get("Content-Encoding") != "gzip" || h.Get("Etag") != `W/"v1"` || h.Get("Vary") != "Origin, Accept-Encoding" || h.Get("Content-Length") != "" {
			t.Errorf("headers = %v", h)
		}
		decode(t, r)
	})
	t.Run("weak etag kept", func(t *testing.T) {
		r := get(t, gw.URL+"/", "Accept-Encoding", "gzip", "x-echo-header", `etag=W/"v1"`)
		if h := r.resp.Header; h.Get("Content-Encoding") != "gzip" || h.Get("Etag") != `W/"v1"` {
			t.Errorf("headers = %v", h)
		}
	})
	def := gateway(t, gzipConfig(t, nil), []*routev3.Route{hcmtest.Prefix("/", "web")}, map[string]string{"web": be.Addr()})
	t.Run("strong etag dropped by default", func(t *testing.T) {
		r := get(t, def.URL+"/", "Accept-Encoding", "gzip", "x-echo-header", `etag="v1"`)
		if h := r.resp.Header; h.Get("Content-Encoding") != "gzip" || h.Get("Etag") != "" {
			t.Errorf("headers = %v", h)
		}
	})
	t.Run("http2 client", func(t *testing.T) {
		req, _ := http.NewRequest("GET", def.URL+"/", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := hcmtest.H2CClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		r := reply{resp: resp, raw: raw}
		var echo backend.Echo
		if resp.ProtoMajor != 2 || resp.Header.Get("Content-Encoding") != "gzip" || json.Unmarshal(decode(t, r), &echo) != nil || echo.Service != "web" {
			t.Errorf("h2: proto %d headers %v", resp.ProtoMajor, resp.Header)
		}
	})
}

func TestSkipsEndToEnd(t *testing.T) {
	be := startBackend(t)
	cfg := gzipConfig(t, func(rd *compressorv3.Compressor_ResponseDirectionConfig) {
		rd.DisableOnEtagHeader = true
		rd.UncompressibleResponseCodes = []uint32{503}
		rd.CommonConfig.MinContentLength = wrapperspb.UInt32(200)
	})
	small := strings.Repeat("s", 199) // one byte under min_content_length
	gw := gateway(t, cfg, []*routev3.Route{direct("/small", small), hcmtest.Prefix("/", "web")}, map[string]string{"web": be.Addr()})
	tests := []struct {
		name string
		hdr  []string
		vary bool // the response could have been compressed
	}{
		{"no accept-encoding", nil, true},
		{"encoding not accepted", []string{"Accept-Encoding", "br, deflate"}, true},
		{"q=0", []string{"Accept-Encoding", "gzip;q=0, *"}, true},
		{"wildcard q=0", []string{"Accept-Encoding", "*;q=0"}, true},
		{"identity preferred", []string{"Accept-Encoding", "gzip;q=0.1, identity"}, true},
		{"content-encoding", []string{"Accept-Encoding", "gzip", "x-echo-header", "content-encoding=br"}, false},
		{"no-transform", []string{"Accept-Encoding", "gzip", "x-echo-header", "cache-control=private, no-transform"}, false},
		{"content-type", []string{"Accept-Encoding", "gzip", "x-echo-body-size", "5000"}, false},
		{"too small", []string{"Accept-Encoding", "gzip"}, false},
		{"etag", []string{"Accept-Encoding", "gzip", "x-echo-header", `etag="abc"`}, false},
		{"uncompressible status", []string{"Accept-Encoding", "gzip", "x-echo-status", "503"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/some/longer/path/so/the/echo/passes/the/minimum/length/of/two/hundred/bytes"
			if tt.name == "too small" {
				path = "/small"
			}
			r := get(t, gw.URL+path, tt.hdr...)
			h := r.resp.Header
			if h.Get("Content-Encoding") == "gzip" {
				t.Fatalf("compressed: %v", h)
			}
			if tt.name != "content-type" && tt.name != "too small" && !strings.HasPrefix(string(r.raw), "{") {
				t.Errorf("body is not the backend's JSON: %q", r.raw)
			}
			if tt.name == "too small" && (h.Get("Content-Length") != "199" || string(r.raw) != small) {
				t.Errorf("too small: headers %v body %q", h, r.raw)
			}
			if got := h.Get("Vary") == "Accept-Encoding"; got != tt.vary {
				t.Errorf("vary %q, want present=%v", h.Get("Vary"), tt.vary)
			}
		})
	}
	// The same request without the skip reason is compressed, so each
	// case above fails for its own reason.
	r := get(t, gw.URL+"/some/longer/path/so/the/echo/passes/the/minimum/length/of/two/hundred/bytes", "Accept-Encoding", "gzip")
	if r.resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("control request not compressed: %v (%d bytes)", r.resp.Header, len(r.raw))
	}
}

func TestRemoveAcceptEncoding(t *testing.T) {
	be := startBackend(t)
	cfg := gzipConfig(t, func(rd *compressorv3.Compressor_ResponseDirectionConfig) { rd.RemoveAcceptEncodingHeader = true })
	keep := &compressorv3.CompressorPerRoute{Override: &compressorv3.CompressorPerRoute_Overrides{Overrides: &compressorv3.CompressorOverrides{
		ResponseDirectionConfig: &compressorv3.ResponseDirectionOverrides{RemoveAcceptEncodingHeader: wrapperspb.Bool(false)},
	}}}
	gw := gateway(t, cfg, []*routev3.Route{perRoute(t, "/keep", "web", keep), hcmtest.Prefix("/", "web")}, map[string]string{"web": be.Addr()})
	for path, want := range map[string]string{"/strip": "", "/keep": "gzip"} {
		r := get(t, gw.URL+path, "Accept-Encoding", "gzip")
		var echo backend.Echo
		if err := json.Unmarshal(decode(t, r), &echo); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got := echo.Headers["accept-encoding"]; got != want {
			t.Errorf("%s: upstream saw accept-encoding %q, want %q", path, got, want)
		}
		if r.resp.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: response not compressed: %v", path, r.resp.Header)
		}
	}
}

func TestPerRouteEndToEnd(t *testing.T) {
	be := startBackend(t)
	off := gzipConfig(t, func(rd *compressorv3.Compressor_ResponseDirectionConfig) { rd.CommonConfig.Enabled = on(false) })
	disabled := &compressorv3.CompressorPerRoute{Override: &compressorv3.CompressorPerRoute_Disabled{Disabled: true}}
	enable := &compressorv3.CompressorPerRoute{Override: &compressorv3.CompressorPerRoute_Overrides{Overrides: &compressorv3.CompressorOverrides{
		ResponseDirectionConfig: &compressorv3.ResponseDirectionOverrides{},
	}}}
	toZstd := &compressorv3.CompressorPerRoute{Override: &compressorv3.CompressorPerRoute_Overrides{Overrides: &compressorv3.CompressorOverrides{
		CompressorLibrary: lib(t, "z", &zstdv3.Zstd{}),
	}}}
	routes := []*routev3.Route{
		perRoute(t, "/disabled", "web", disabled),
		perRoute(t, "/zstd", "web", toZstd),
		hcmtest.Prefix("/", "web"),
	}
	gw := gateway(t, gzipConfig(t, nil), routes, map[string]string{"web": be.Addr()})
	offGW := gateway(t, off, []*routev3.Route{perRoute(t, "/enabled", "web", enable), hcmtest.Prefix("/", "web")}, map[string]string{"web": be.Addr()})
	for _, tt := range []struct {
		url, accept, want string
		vary              bool
	}{
		{gw.URL + "/default", "gzip, zstd", "gzip", true},
		{gw.URL + "/disabled", "gzip, zstd", "", false},
		{gw.URL + "/zstd", "gzip, zstd", "zstd", true},
		{gw.URL + "/zstd", "gzip", "", true},
		{offGW.URL + "/other", "gzip", "", false},
		{offGW.URL + "/enabled", "gzip", "gzip", true},
	} {
		r := get(t, tt.url, "Accept-Encoding", tt.accept)
		h := r.resp.Header
		if h.Get("Content-Encoding") != tt.want || (h.Get("Vary") != "") != tt.vary {
			t.Errorf("%s (%s): content-encoding %q vary %q, want %q vary %v", tt.url, tt.accept, h.Get("Content-Encoding"), h.Get("Vary"), tt.want, tt.vary)
		}
		var echo backend.Echo
		if err := json.Unmarshal(decode(t, r), &echo); err != nil || echo.Service != "web" {
			t.Errorf("%s: body %v %+v", tt.url, err, echo)
		}
	}
}

func TestLocalReplyCompressed(t *testing.T) {
	body := strings.Repeat("this answer comes from the gateway itself. ", 20)
	gw := gateway(t, gzipConfig(t, nil), []*routev3.Route{direct("/", body)}, nil)
	r := get(t, gw.URL+"/", "Accept-Encoding", "gzip")
	if r.resp.Header.Get("Content-Encoding") != "gzip" || r.resp.Header.Get("Content-Length") != "" {
		t.Fatalf("local reply headers = %v", r.resp.Header)
	}
	if got := decode(t, r); string(got) != body {
		t.Errorf("local reply decompressed to %q", got)
	}
	if len(r.raw) >= len(body) {
		t.Errorf("%d compressed bytes for %d", len(r.raw), len(body))
	}
}

// TestStreamingChunks checks that each upstream chunk reaches the client
// compressed before the upstream sends the next: the upstream waits for
// the client to have decoded a chunk before writing the next one.
func TestStreamingChunks(t *testing.T) {
	chunks := []string{strings.Repeat("first chunk; ", 40), strings.Repeat("second chunk; ", 40), strings.Repeat("third chunk; ", 40)}
	next := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for i, c := range chunks {
			if i > 0 {
				select {
				case <-next:
				case <-time.After(5 * time.Second):
					return // the client never decoded the last chunk
				case <-r.Context().Done():
					return
				}
			}
			io.WriteString(w, c)
			w.(http.Flusher).Flush()
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	for _, tt := range []struct {
		name    string
		library proto.Message
		reader  func(io.Reader) (io.Reader, error)
	}{
		{"gzip", &gzipv3.Gzip{}, func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
		{"zstd", &zstdv3.Zstd{}, func(r io.Reader) (io.Reader, error) { return zstd.NewReader(r, zstd.WithDecoderConcurrency(1)) }},
		{"brotli", &brotliv3.Brotli{}, func(r io.Reader) (io.Reader, error) { return brotli.NewReader(r), nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &compressorv3.Compressor{CompressorLibrary: lib(t, "s", tt.library), ResponseDirectionConfig: &compressorv3.Compressor_ResponseDirectionConfig{}}
			gw := gateway(t, cfg, []*routev3.Route{hcmtest.Prefix("/", "stream")}, map[string]string{"stream": ln.Addr().String()})
			req, _ := http.NewRequest("GET", gw.URL+"/", nil)
			req.Header.Set("Accept-Encoding", "gzip, zstd, br")
			client := hcmtest.Client()
			client.Timeout = 10 * time.Second // a body held back fails the read, not the run
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.Header.Get("Content-Encoding") == "" || resp.Header.Get("Content-Length") != "" {
				t.Fatalf("headers = %v", resp.Header)
			}
			zr, err := tt.reader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range chunks {
				if i > 0 {
					select {
					case next <- struct{}{}:
					case <-time.After(10 * time.Second):
						t.Fatalf("the upstream stopped waiting before chunk %d", i)
					}
				}
				got := make([]byte, len(c))
				if _, err := io.ReadFull(zr, got); err != nil {
					t.Fatalf("chunk %d: %v", i, err)
				}
				if string(got) != c {
					t.Fatalf("chunk %d = %q", i, got)
				}
			}
			if rest, err := io.ReadAll(zr); err != nil || len(rest) != 0 {
				t.Errorf("after the last chunk: %d bytes, %v", len(rest), err)
			}
		})
	}
}

func TestConfigErrorsEndToEnd(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  *compressorv3.Compressor
		want string
	}{
		{"request compression", &compressorv3.Compressor{CompressorLibrary: lib(t, "g", &gzipv3.Gzip{}), RequestDirectionConfig: &compressorv3.Compressor_RequestDirectionConfig{}}, "request_direction_config.common_config.enabled"},
		{"unknown library", &compressorv3.Compressor{CompressorLibrary: lib(t, "x", &wrapperspb.Int32Value{})}, "compressor_library.typed_config"},
		{"bad gzip window", &compressorv3.Compressor{CompressorLibrary: lib(t, "g", &gzipv3.Gzip{WindowBits: wrapperspb.UInt32(1)})}, "window_bits"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &hcm.Compiler{}
			_, err := c.Compile(&hcmv3.HttpConnectionManager{
				StatPrefix:     "test",
				RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: hcmtest.Routes(hcmtest.Prefix("/", "web"))},
				HttpFilters:    []*hcmv3.HttpFilter{hcmtest.Filter(t, FilterName, tt.cfg), hcmtest.RouterFilter(t)},
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("compile error = %v, want one naming %s", err, tt.want)
			}
		})
	}
}
