package hcm_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// rawRequest writes head (a request line and headers, without the final
// empty line) on a new connection, so paths reach the gateway byte for
// byte, and reads the response.
func rawRequest(t *testing.T, addr, head string) result {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, head+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", head, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

var uuid4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRequestNormalization(t *testing.T) {
	echo := startEcho(t, "echo")
	type want struct {
		status   int
		path     string // as the backend saw it
		query    string
		location string
		headers  map[string]string // request headers the backend saw; "" means absent
		check    func(t *testing.T, r result)
	}
	tests := []struct {
		name string
		hcm  func(m *hcmv3.HttpConnectionManager)
		head string
		want want
	}{
		{"normalize_path removes dot-dot segments", normalize, "GET /a/../b HTTP/1.1\r\nHost: x", want{status: 200, path: "/b"}},
		{"normalize_path removes dot segments", normalize, "GET /./x HTTP/1.1\r\nHost: x", want{status: 200, path: "/x"}},
		{"normalize_path keeps the query", normalize, "GET /a/b/../../c?q=/../1 HTTP/1.1\r\nHost: x", want{status: 200, path: "/c", query: "q=/../1"}},
		{"normalize_path cannot climb above the root", normalize, "GET /../../etc HTTP/1.1\r\nHost: x", want{status: 200, path: "/etc"}},
		{"normalize_path decodes percent-encoded dots", normalize, "GET /a/%2e%2E/b HTTP/1.1\r\nHost: x", want{status: 200, path: "/b"}},
		{"normalize_path turns backslashes into slashes", normalize, "GET /a\\..\\b HTTP/1.1\r\nHost: x", want{status: 200, path: "/b"}},
		{"merge_slashes", func(m *hcmv3.HttpConnectionManager) { m.MergeSlashes = true }, "GET //a///b HTTP/1.1\r\nHost: x", want{status: 200, path: "/a/b"}},
		{"escaped slashes rejected", escaped(hcmv3.HttpConnectionManager_REJECT_REQUEST), "GET /a%2Fb HTTP/1.1\r\nHost: x", want{status: 400}},
		{"escaped slashes redirected", escaped(hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT), "GET /a%2fb?x=1 HTTP/1.1\r\nHost: x", want{status: 301, location: "/a/b?x=1"}},
		{"escaped slashes forwarded unescaped", escaped(hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD), "GET /a%2Fb%5Cc HTTP/1.1\r\nHost: x", want{status: 200, path: `/a/b\c`}},
		{"asterisk form outside OPTIONS is refused", nil, "GET * HTTP/1.1\r\nHost: x", want{status: 400}},
		{"a path without a leading slash is refused", nil, "GET foo/bar HTTP/1.1\r\nHost: x", want{status: 400}},
		{"absolute form is accepted", nil, "GET http://x/abs HTTP/1.1\r\nHost: x", want{status: 200, path: "/abs"}},
		// A request that arrived with x-forwarded-for came from beyond the
		// peer: external, whatever the peer's address, as in Envoy.
		{"x-forwarded-for appended with use_remote_address", remote, "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.1\r\nX-Envoy-Retry-On: 5xx", want{status: 200, headers: map[string]string{
			"x-forwarded-for": "192.0.2.1, 127.0.0.1", "x-forwarded-proto": "http", "x-envoy-external-address": "127.0.0.1", "x-envoy-internal": "", "x-envoy-retry-on": "",
		}}},
		{"a loopback peer without x-forwarded-for is internal", remote, "GET / HTTP/1.1\r\nHost: x\r\nX-Envoy-Retry-On: 5xx", want{status: 200, headers: map[string]string{
			"x-forwarded-for": "127.0.0.1", "x-envoy-external-address": "", "x-envoy-internal": "true", "x-envoy-retry-on": "5xx",
		}}},
		{"x-forwarded-for untouched without use_remote_address", nil, "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.1", want{status: 200, headers: map[string]string{
			"x-forwarded-for": "192.0.2.1", "x-forwarded-proto": "http", "x-envoy-external-address": "",
		}}},
		{"x-forwarded-proto from the client kept without use_remote_address", nil, "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https", want{status: 200, headers: map[string]string{
			"x-forwarded-proto": "https",
		}}},
		{"x-forwarded-proto overwritten with use_remote_address", remote, "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https", want{status: 200, headers: map[string]string{
			"x-forwarded-proto": "http",
		}}},
		{"x-request-id preserved", nil, "GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123", want{status: 200, headers: map[string]string{"x-request-id": "abc-123"}}},
		{"x-request-id generated", nil, "GET / HTTP/1.1\r\nHost: x", want{status: 200, check: func(t *testing.T, r result) {
			if id := r.echo(t).Headers["x-request-id"]; !uuid4.MatchString(id) {
				t.Errorf("x-request-id %q is not a UUID v4", id)
			}
		}}},
		{"x-request-id not generated when turned off", func(m *hcmv3.HttpConnectionManager) { m.GenerateRequestId = wrapperspb.Bool(false) },
			"GET / HTTP/1.1\r\nHost: x", want{status: 200, headers: map[string]string{"x-request-id": ""}}},
		{"hop-by-hop headers stripped, TE: trailers kept", nil,
			"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: foo\r\nX-Kept: 1",
			want{status: 200, headers: map[string]string{
				"x-secret": "", "keep-alive": "", "proxy-connection": "", "upgrade": "", "te": "trailers", "x-kept": "1",
			}}},
		{"TE keeps only trailers", nil, "GET / HTTP/1.1\r\nHost: x\r\nTE: deflate, trailers;q=1", want{status: 200, headers: map[string]string{"te": "trailers"}}},
		{"TE without trailers is dropped", nil, "GET / HTTP/1.1\r\nHost: x\r\nTE: deflate", want{status: 200, headers: map[string]string{"te": ""}}},
		{"server header overwritten with envoy by default", nil, "GET / HTTP/1.1\r\nHost: x", want{status: 200, check: func(t *testing.T, r result) {
			if got := r.header.Get("Server"); got != "envoy" {
				t.Errorf("server = %q, want envoy", got)
			}
		}}},
		{"server header overwritten with server_name", func(m *hcmv3.HttpConnectionManager) { m.ServerName = "waygate" }, "GET / HTTP/1.1\r\nHost: x", want{status: 200, check: func(t *testing.T, r result) {
			if got := r.header.Get("Server"); got != "waygate" {
				t.Errorf("server = %q, want waygate", got)
			}
		}}},
		{"server header passed through", func(m *hcmv3.HttpConnectionManager) {
			m.ServerHeaderTransformation = hcmv3.HttpConnectionManager_PASS_THROUGH
		}, "GET / HTTP/1.1\r\nHost: x", want{status: 200, check: func(t *testing.T, r result) {
			if got := r.header.Get("Server"); got != "waygate-demo" {
				t.Errorf("server = %q, want the backend's", got)
			}
		}}},
		{"server header on local replies", nil, "GET * HTTP/1.1\r\nHost: x", want{status: 400, check: func(t *testing.T, r result) {
			if got := r.header.Get("Server"); got != "envoy" {
				t.Errorf("server = %q, want envoy", got)
			}
		}}},
		{"headers over max_request_headers_kb are refused", func(m *hcmv3.HttpConnectionManager) { m.MaxRequestHeadersKb = wrapperspb.UInt32(1) },
			"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 1100), want{status: 431}},
		{"headers within max_request_headers_kb pass", func(m *hcmv3.HttpConnectionManager) { m.MaxRequestHeadersKb = wrapperspb.UInt32(2) },
			"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 1100), want{status: 200}},
		{"via added to request and response", func(m *hcmv3.HttpConnectionManager) { m.Via = "1.1 waygate" }, "GET / HTTP/1.1\r\nHost: x", want{status: 200,
			headers: map[string]string{"via": "1.1 waygate"},
			check: func(t *testing.T, r result) {
				if got := r.header.Get("Via"); got != "1.1 waygate" {
					t.Errorf("response via = %q, want 1.1 waygate", got)
				}
			}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := hcmtest.HCM(t, hcmtest.Routes(hcmtest.Prefix("/", "echo")))
			if tt.hcm != nil {
				tt.hcm(m)
			}
			gw := hcmtest.Start(t, hcmtest.Options{HCM: m, Clusters: staticClusters([]*clusterSpec{{"echo", echo.Addr()}})})
			r := rawRequest(t, gw.Addr, tt.head)
			if r.status != tt.want.status {
				t.Fatalf("status = %d (%q), want %d", r.status, r.body, tt.want.status)
			}
			if tt.want.location != "" && r.header.Get("Location") != tt.want.location {
				t.Errorf("location = %q, want %q", r.header.Get("Location"), tt.want.location)
			}
			if tt.want.path != "" {
				e := r.echo(t)
				if e.Path != tt.want.path || e.Query != tt.want.query {
					t.Errorf("backend saw path %q query %q, want %q %q", e.Path, e.Query, tt.want.path, tt.want.query)
				}
			}
			if len(tt.want.headers) > 0 {
				e := r.echo(t)
				for k, v := range tt.want.headers {
					if got, ok := e.Headers[k]; got != v || (v == "" && ok) {
						t.Errorf("backend saw %s = %q, want %q", k, got, v)
					}
				}
			}
			if tt.want.check != nil {
				tt.want.check(t, r)
			}
		})
	}
}

func normalize(m *hcmv3.HttpConnectionManager) { m.NormalizePath = wrapperspb.Bool(true) }

func remote(m *hcmv3.HttpConnectionManager) { m.UseRemoteAddress = wrapperspb.Bool(true) }

func escaped(a hcmv3.HttpConnectionManager_PathWithEscapedSlashesAction) func(m *hcmv3.HttpConnectionManager) {
	return func(m *hcmv3.HttpConnectionManager) { m.PathWithEscapedSlashesAction = a }
}
