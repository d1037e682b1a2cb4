package compressor

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	brotliv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/brotli/compressor/v3"
	gzipv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/gzip/compressor/v3"
	zstdv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/zstd/compressor/v3"
	compressorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/compressor/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/stats"
)

func lib(t testing.TB, name string, m proto.Message) *corev3.TypedExtensionConfig {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return &corev3.TypedExtensionConfig{Name: name, TypedConfig: a}
}

func on(v bool) *corev3.RuntimeFeatureFlag {
	return &corev3.RuntimeFeatureFlag{DefaultValue: wrapperspb.Bool(v), RuntimeKey: "compressor.enabled"}
}

// gzipConfig is a Compressor with gzip and response_direction_config,
// changed by f.
func gzipConfig(t testing.TB, f func(*compressorv3.Compressor_ResponseDirectionConfig)) *compressorv3.Compressor {
	rd := &compressorv3.Compressor_ResponseDirectionConfig{CommonConfig: &compressorv3.Compressor_CommonDirectionConfig{}}
	if f != nil {
		f(rd)
	}
	return &compressorv3.Compressor{
		CompressorLibrary:       lib(t, "text_optimized", &gzipv3.Gzip{}),
		ResponseDirectionConfig: rd,
	}
}

func mustCompile(t *testing.T, pb *compressorv3.Compressor) *config {
	t.Helper()
	c, err := compile(pb)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestContentType(t *testing.T) {
	def := mustCompile(t, gzipConfig(t, nil)).resp
	listed := mustCompile(t, gzipConfig(t, func(rd *compressorv3.Compressor_ResponseDirectionConfig) {
		rd.CommonConfig.ContentType = []string{"application/grpc-web+proto", "Text/Markdown"}
	})).resp
	matched := mustCompile(t, gzipConfig(t, func(rd *compressorv3.Compressor_ResponseDirectionConfig) {
		rd.CommonConfig.ContentType = []string{"text/html"}
		rd.CommonConfig.ContentTypeMatcher = []*matcherv3.StringMatcher{{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "text/"}}}
	})).resp
	legacy := mustCompile(t, &compressorv3.Compressor{CompressorLibrary: lib(t, "g", &gzipv3.Gzip{}), ContentType: []string{"application/wasm"}}).resp
	tests := []struct {
		name string
		r    *response
		ct   string
		want bool
	}{
		{"default json", &def, "application/json", true},
		{"default with parameters", &def, "text/html; charset=utf-8", true},
		{"default case folded", &def, "Text/CSS", true},
		{"default synonym", &def, "text/javascript", true},
		{"default svg", &def, "image/svg+xml", true},
		{"default refuses images", &def, "image/png", false},
		{"default refuses octet-stream", &def, "application/octet-stream", false},
		{"no content-type is allowed", &def, "", true},
		{"list replaces the default", &listed, "application/json", false},
		{"listed type", &listed, "application/grpc-web+proto", true},
		{"listed type case folded", &listed, "text/markdown;charset=utf-8", true},
		{"matcher wins over the list", &matched, "text/css", true},
		{"matcher refuses", &matched, "application/json", false},
		{"legacy top-level list", &legacy, "application/wasm", true},
		{"legacy list replaces the default", &legacy, "text/html", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.typeAllowed(tt.ct); got != tt.want {
				t.Errorf("typeAllowed(%q) = %v, want %v", tt.ct, got, tt.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	def := mustCompile(t, gzipConfig(t, nil)).resp
	etagOff := mustCompile(t, gzipConfig(t, func(rd *compressorv3.Compressor_ResponseDirectionConfig) { rd.DisableOnEtagHeader = true })).resp
	etagWeaken := mustCompile(t, gzipConfig(t, func(rd *compressorv3.Compressor_ResponseDirectionConfig) {
		rd.DisableOnEtagHeader, rd.WeakenEtagOnCompress = true, true
	})).resp
	codes := mustCompile(t, gzipConfig(t, func(rd *compressorv3.Compressor_ResponseDirectionConfig) {
		rd.UncompressibleResponseCodes = []uint32{206}
	})).resp
	min100 := mustCompile(t, gzipConfig(t, func(rd *compressorv3.Compressor_ResponseDirectionConfig) {
		rd.CommonConfig.MinContentLength = wrapperspb.UInt32(100)
	})).resp
	off := mustCompile(t, gzipConfig(t, func(rd *compressorv3.Compressor_ResponseDirectionConfig) { rd.CommonConfig.Enabled = on(false) })).resp
	gz := []string{"gzip"}
	tests := []struct {
		name   string
		r      *response
		accept []string
		status int
		hdr    []string
		end    bool
		want   skip
		vary   bool
	}{
		{"compresses", &def, gz, 200, []string{"Content-Type", "application/json", "Content-Length", "100"}, false, skipNone, true},
		{"unknown length compresses", &def, gz, 200, []string{"Content-Type", "text/html"}, false, skipNone, true},
		{"at min length compresses", &def, gz, 200, []string{"Content-Type", "text/plain", "Content-Length", "30"}, false, skipNone, true},
		{"disabled", &off, gz, 200, []string{"Content-Type", "text/plain"}, false, skipDisabled, false},
		{"no accept-encoding", &def, nil, 200, []string{"Content-Type", "text/plain"}, false, skipAcceptEncoding, true},
		{"other encoding only", &def, []string{"br"}, 200, []string{"Content-Type", "text/plain"}, false, skipAcceptEncoding, true},
		{"q=0", &def, []string{"gzip;q=0"}, 200, []string{"Content-Type", "text/plain"}, false, skipAcceptEncoding, true},
		{"wildcard q=0", &def, []string{"*;q=0"}, 200, []string{"Content-Type", "text/plain"}, false, skipAcceptEncoding, true},
		{"no body", &def, gz, 200, []string{"Content-Type", "text/plain", "Content-Length", "100"}, true, skipNoBody, false},
		{"too small", &def, gz, 200, []string{"Content-Type", "text/plain", "Content-Length", "29"}, false, skipTooSmall, false},
		{"min_content_length", &min100, gz, 200, []string{"Content-Type", "text/plain", "Content-Length", "99"}, false, skipTooSmall, false},
		{"content-type", &def, gz, 200, []string{"Content-Type", "image/png"}, false, skipContentType, false},
		{"no-transform", &def, gz, 200, []string{"Content-Type", "text/plain", "Cache-Control", "public, No-Transform"}, false, skipNoTransform, false},
		{"etag kept by default", &def, gz, 200, []string{"Content-Type", "text/plain", "Etag", `"abc"`}, false, skipNone, true},
		{"disable_on_etag_header", &etagOff, gz, 200, []string{"Content-Type", "text/plain", "Etag", `"abc"`}, false, skipEtag, false},
		{"weaken_etag_on_compress wins", &etagWeaken, gz, 200, []string{"Content-Type", "text/plain", "Etag", `"abc"`}, false, skipNone, true},
		{"content-encoding", &def, gz, 200, []string{"Content-Type", "text/plain", "Content-Encoding", "br"}, false, skipContentEncoding, false},
		{"transfer-encoding", &def, gz, 200, []string{"Content-Type", "text/plain", "Transfer-Encoding", "gzip, chunked"}, false, skipTransferEnc, false},
		{"chunked transfer-encoding compresses", &def, gz, 200, []string{"Content-Type", "text/plain", "Transfer-Encoding", "chunked"}, false, skipNone, true},
		{"uncompressible status", &codes, gz, 206, []string{"Content-Type", "text/plain"}, false, skipStatus, false},
		{"other status compresses", &codes, gz, 404, []string{"Content-Type", "text/plain"}, false, skipNone, true},
		{"upgrade", &def, gz, 101, []string{"Upgrade", "websocket"}, false, skipUpgrade, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				h.Add(tt.hdr[i], tt.hdr[i+1])
			}
			d := tt.r.decide("gzip", tt.accept, tt.status, h, tt.end)
			if d.why != tt.want || d.vary != tt.vary {
				t.Errorf("decide = %q vary %v, want %q vary %v", d.why, d.vary, tt.want, tt.vary)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	gz := func(t testing.TB) *corev3.TypedExtensionConfig { return lib(t, "g", &gzipv3.Gzip{}) }
	tests := []struct {
		name string
		pb   *compressorv3.Compressor
		want string
	}{
		{"no library", &compressorv3.Compressor{}, "compressor_library.typed_config: required"},
		{"unknown library", &compressorv3.Compressor{CompressorLibrary: lib(t, "x", &wrapperspb.StringValue{})}, `compressor_library.typed_config: unsupported type "type.googleapis.com/google.protobuf.StringValue"`},
		{"request compression", &compressorv3.Compressor{CompressorLibrary: gz(t), RequestDirectionConfig: &compressorv3.Compressor_RequestDirectionConfig{}}, "request_direction_config.common_config.enabled: request compression is not supported"},
		{"request flag without default", &compressorv3.Compressor{CompressorLibrary: gz(t), RequestDirectionConfig: &compressorv3.Compressor_RequestDirectionConfig{CommonConfig: &compressorv3.Compressor_CommonDirectionConfig{Enabled: &corev3.RuntimeFeatureFlag{}}}}, "request_direction_config.common_config.enabled.default_value: required"},
		{"gzip level", &compressorv3.Compressor{CompressorLibrary: lib(t, "g", &gzipv3.Gzip{CompressionLevel: 12})}, "compressor_library.typed_config (Gzip): compression_level: 12"},
		{"gzip window bits", &compressorv3.Compressor{CompressorLibrary: lib(t, "g", &gzipv3.Gzip{WindowBits: wrapperspb.UInt32(30)})}, "compressor_library.typed_config (Gzip): window_bits: 30 is outside 9-15"},
		{"gzip memory level", &compressorv3.Compressor{CompressorLibrary: lib(t, "g", &gzipv3.Gzip{MemoryLevel: wrapperspb.UInt32(0)})}, "compressor_library.typed_config (Gzip): memory_level: 0 is outside 1-9"},
		{"gzip strategy", &compressorv3.Compressor{CompressorLibrary: lib(t, "g", &gzipv3.Gzip{CompressionStrategy: 9})}, "compressor_library.typed_config (Gzip): compression_strategy: 9"},
		{"gzip chunk size", &compressorv3.Compressor{CompressorLibrary: lib(t, "g", &gzipv3.Gzip{ChunkSize: wrapperspb.UInt32(10)})}, "compressor_library.typed_config (Gzip): chunk_size: 10 is outside 4096-65536"},
		{"zstd level", &compressorv3.Compressor{CompressorLibrary: lib(t, "z", &zstdv3.Zstd{CompressionLevel: wrapperspb.UInt32(40)})}, "compressor_library.typed_config (Zstd): compression_level: 40 is outside 0-22"},
		{"zstd dictionary", &compressorv3.Compressor{CompressorLibrary: lib(t, "z", &zstdv3.Zstd{Dictionary: &corev3.DataSource{}})}, "compressor_library.typed_config (Zstd): dictionary: dictionary compression is not supported"},
		{"brotli quality", &compressorv3.Compressor{CompressorLibrary: lib(t, "b", &brotliv3.Brotli{Quality: wrapperspb.UInt32(12)})}, "compressor_library.typed_config (Brotli): quality: 12 is outside 0-11"},
		{"brotli window", &compressorv3.Compressor{CompressorLibrary: lib(t, "b", &brotliv3.Brotli{WindowBits: wrapperspb.UInt32(9)})}, "compressor_library.typed_config (Brotli): window_bits: 9 is outside 10-24"},
		{"status code", gzipConfig(t, func(rd *compressorv3.Compressor_ResponseDirectionConfig) {
			rd.UncompressibleResponseCodes = []uint32{206, 42}
		}), "response_direction_config.uncompressible_response_codes[1]: 42 is not a status code"},
		{"content type matcher", gzipConfig(t, func(rd *compressorv3.Compressor_ResponseDirectionConfig) {
			rd.CommonConfig.ContentTypeMatcher = []*matcherv3.StringMatcher{{}}
		}), "response_direction_config.common_config.content_type_matcher[0].match_pattern"},
		{"response flag without default", gzipConfig(t, func(rd *compressorv3.Compressor_ResponseDirectionConfig) {
			rd.CommonConfig.Enabled = &corev3.RuntimeFeatureFlag{}
		}), "response_direction_config.common_config.enabled.default_value: required"},
		{"legacy flag without default", &compressorv3.Compressor{CompressorLibrary: gz(t), RuntimeEnabled: &corev3.RuntimeFeatureFlag{}}, "enabled.default_value: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.pb, filters.Env{})
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want prefix %q", err, tt.want)
			}
		})
	}
	// Request compression explicitly off is accepted.
	ok := &compressorv3.Compressor{CompressorLibrary: gz(t), RequestDirectionConfig: &compressorv3.Compressor_RequestDirectionConfig{CommonConfig: &compressorv3.Compressor_CommonDirectionConfig{Enabled: on(false)}}}
	if _, err := New(ok, filters.Env{}); err != nil {
		t.Errorf("request_direction_config disabled: %v", err)
	}
}

func TestRouteConfigErrors(t *testing.T) {
	compileRC, ok := filters.LookupRouteConfig(PerRouteTypeURL)
	if !ok {
		t.Fatal("CompressorPerRoute not registered")
	}
	_, err := compileRC(&compressorv3.CompressorPerRoute{Override: &compressorv3.CompressorPerRoute_Overrides{Overrides: &compressorv3.CompressorOverrides{
		CompressorLibrary: lib(t, "x", &wrapperspb.BoolValue{}),
	}}})
	if err == nil || !strings.HasPrefix(err.Error(), "overrides.compressor_library.typed_config: unsupported type") {
		t.Errorf("error = %v, want one naming overrides.compressor_library.typed_config", err)
	}
	if _, err := compileRC(&compressorv3.CompressorPerRoute{}); err == nil || !strings.HasPrefix(err.Error(), "override:") {
		t.Errorf("empty per-route config: error = %v, want one naming override", err)
	}
	if _, err := compileRC(&gzipv3.Gzip{}); err == nil {
		t.Error("a config of another type must fail")
	}
}

// testRoute is the view of a matched route the filter reads.
type testRoute struct{ per map[string]any }

func (r *testRoute) Name() string                    { return "r1" }
func (r *testRoute) VirtualHost() string             { return "vh1" }
func (r *testRoute) Cluster() string                 { return "web" }
func (r *testRoute) PerFilterConfig(name string) any { return r.per[name] }

// drive runs one exchange through a filter of f the way the chain does,
// with the response body in chunks, and returns the response.
func drive(t *testing.T, f *Factory, rt filters.Route, accept string, hdr http.Header, chunks ...string) (http.Header, []byte) {
	t.Helper()
	x := &filters.Exchange{Request: filters.Request{Method: "GET", Path: "/", Header: http.Header{}}}
	if accept != "" {
		x.Request.Header.Set("Accept-Encoding", accept)
	}
	if rt != nil {
		x.Route = rt
	}
	fl := f.NewFilter(x)
	if fl == nil {
		return hdr, []byte(strings.Join(chunks, ""))
	}
	fl.(filters.RequestHeadersFilter).OnRequestHeaders(x, true)
	x.Response = filters.Response{Status: 200, Header: hdr}
	fl.(filters.ResponseHeadersFilter).OnResponseHeaders(x, len(chunks) == 0)
	var out []byte
	for i, c := range chunks {
		b := filters.NewBuffer([]byte(c))
		if st := fl.(filters.ResponseBodyFilter).OnResponseBody(x, b, i == len(chunks)-1); st != filters.Continue {
			t.Fatalf("body: %v", st)
		}
		out = append(out, b.Bytes()...)
	}
	fl.(filters.DoneFilter).OnDone(x)
	return x.Response.Header, out
}

func TestStats(t *testing.T) {
	store := stats.NewStore()
	f, err := New(gzipConfig(t, nil), filters.Env{Stats: store.Scope("http.ingress.").Filters()})
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("hello, compressor! ", 10)
	json := func(extra ...string) http.Header {
		h := http.Header{"Content-Type": {"application/json"}}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}
	drive(t, f, nil, "gzip", json(), body[:50], body[50:])
	drive(t, f, nil, "*", json(), body)
	drive(t, f, nil, "", json(), body)
	drive(t, f, nil, "identity", json(), body)
	drive(t, f, nil, "br", json(), body)
	drive(t, f, nil, "gzip", json("Content-Length", "5"), "hello")
	legacy, err := New(&compressorv3.Compressor{CompressorLibrary: lib(t, "plain", &gzipv3.Gzip{})}, filters.Env{Stats: store.Scope("http.ingress.").Filters()})
	if err != nil {
		t.Fatal(err)
	}
	drive(t, legacy, nil, "gzip", json(), body)
	p := "http.ingress.compressor.text_optimized.gzip.response."
	for name, want := range map[string]uint64{
		"compressed": 2, "not_compressed": 4, "no_accept_header": 1, "header_compressor_used": 1,
		"header_wildcard": 1, "header_identity": 1, "header_not_valid": 1, "content_length_too_small": 1,
		"total_uncompressed_bytes": uint64(2 * len(body)),
	} {
		if got := store.Counter(p + name).Value(); got != want {
			t.Errorf("%s%s = %d, want %d", p, name, got, want)
		}
	}
	if got := store.Counter(p + "total_compressed_bytes").Value(); got == 0 || got >= uint64(2*len(body)) {
		t.Errorf("total_compressed_bytes = %d, want more than 0 and less than %d", got, 2*len(body))
	}
	// Without response_direction_config Envoy roots stats in the legacy
	// tree, with no direction segment.
	if got := store.Counter("http.ingress.compressor.plain.gzip.compressed").Value(); got != 1 {
		t.Errorf("legacy compressed = %d, want 1", got)
	}
}

func TestFilterChunks(t *testing.T) {
	f, err := New(gzipConfig(t, nil), filters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	chunks := []string{strings.Repeat("a", 100), "", strings.Repeat("b", 1000), strings.Repeat("c", 10)}
	h, out := drive(t, f, nil, "gzip", http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"1110"}, "Etag": {`"v1"`}}, chunks...)
	if h.Get("Content-Encoding") != "gzip" || h.Get("Content-Length") != "" || h.Get("Vary") != "Accept-Encoding" || h.Get("Etag") != "" {
		t.Errorf("headers = %v", h)
	}
	zr, err := gzip.NewReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || string(got) != strings.Join(chunks, "") {
		t.Errorf("decompressed %d bytes (err %v), want %d", len(got), err, 1110)
	}
	// A route that disables the filter keeps the filter out of the stream.
	compileRC, _ := filters.LookupRouteConfig(PerRouteTypeURL)
	rc, err := compileRC(&compressorv3.CompressorPerRoute{Override: &compressorv3.CompressorPerRoute_Disabled{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	x := &filters.Exchange{Request: filters.Request{Header: http.Header{"Accept-Encoding": {"gzip"}}}, Route: &testRoute{per: map[string]any{FilterName: rc}}}
	if f.NewFilter(x) != nil {
		t.Error("disabled route: filter created")
	}
}

func TestAddVary(t *testing.T) {
	for _, tt := range []struct{ in, want []string }{
		{nil, []string{"Accept-Encoding"}},
		{[]string{"Origin"}, []string{"Origin, Accept-Encoding"}},
		{[]string{"origin", "cookie"}, []string{"origin, cookie, Accept-Encoding"}},
		{[]string{"accept-encoding"}, []string{"accept-encoding"}},
		{[]string{"*"}, []string{"*"}},
	} {
		h := http.Header{}
		for _, v := range tt.in {
			h.Add("Vary", v)
		}
		addVary(h)
		if got := h.Values("Vary"); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("vary %q -> %q, want %q", tt.in, got, tt.want)
		}
	}
}
