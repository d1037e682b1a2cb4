package extauthz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/stats"
)

type testRoute struct{ per map[string]any }

func (r *testRoute) Name() string                    { return "r1" }
func (r *testRoute) VirtualHost() string             { return "vh1" }
func (r *testRoute) Cluster() string                 { return "backend" }
func (r *testRoute) PerFilterConfig(name string) any { return r.per[name] }

func exchange(method, path string, hdr ...string) *filters.Exchange {
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Add(hdr[i], hdr[i+1])
	}
	return &filters.Exchange{
		Context: context.Background(),
		Request: filters.Request{Method: method, Scheme: "http", Authority: "bookinfo.example", Path: path, Protocol: "HTTP/1.1", Header: h, ContentLength: -1, ID: "req-1"},
		Downstream: filters.Connection{
			RemoteAddr: netip.MustParseAddrPort("127.0.0.1:40000"),
			LocalAddr:  netip.MustParseAddrPort("127.0.0.1:8080"),
		},
	}
}

func newFactory(t testing.TB, text string, cl clusters, st filters.Stats) *Factory {
	t.Helper()
	pb := &extauthzv3.ExtAuthz{}
	if err := prototext.Unmarshal([]byte(text), pb); err != nil {
		t.Fatalf("config: %v", err)
	}
	f, err := New(pb, filters.Env{Upstream: cl, Stats: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// result is the outcome of running a stream through the filter.
type result struct {
	status filters.Status
	reply  *filters.LocalReply
	x      *filters.Exchange
	resp   http.Header
}

// run drives the filter's phases as the chain does: headers, then the
// body in one chunk when the filter buffers it, then response headers.
func run(t *testing.T, f *Factory, x *filters.Exchange, body string) result {
	t.Helper()
	fl := f.NewFilter(x)
	if fl == nil {
		return result{status: filters.Continue, x: x}
	}
	st := fl.(filters.RequestHeadersFilter).OnRequestHeaders(x, body == "")
	if st == filters.StopAndBuffer {
		bf, ok := fl.(filters.RequestBodyFilter)
		if !ok {
			t.Fatal("StopAndBuffer from a filter without a body phase")
		}
		st = bf.OnRequestBody(x, filters.NewBuffer([]byte(body)), true)
	}
	r := result{status: st, reply: x.LocalReply(), x: x}
	if st == filters.Continue {
		x.Response = filters.Response{Status: 200, Header: http.Header{}}
		fl.(filters.ResponseHeadersFilter).OnResponseHeaders(x, true)
		r.resp = x.Response.Header
	}
	return r
}

const httpCfg = `http_service {
	server_uri { uri: "http://ext-authz.foo.svc.cluster.local:8000" cluster: "authz" timeout { nanos: 500000000 } }
	path_prefix: "/check"
	authorization_request { headers_to_add { key: "x-added" value: "by-gateway" } }
	authorization_response {
		allowed_upstream_headers { patterns { exact: "x-ext-authz-check-result" ignore_case: true } patterns { exact: "x-user" } }
		allowed_upstream_headers_to_append { patterns { exact: "x-tag" } }
		allowed_client_headers_on_success { patterns { prefix: "x-client-" } }
	}
}
allowed_headers { patterns { exact: "x-ext-authz" } patterns { prefix: "x-b3-" } }
transport_api_version: V3`

func TestHTTPService(t *testing.T) {
	addr, seen := startHTTPAuthz(t)
	store := stats.NewStore()
	f := newFactory(t, httpCfg, clusters{"authz": addr}, store.Scope("http.ingress.").Filters())

	t.Run("allowed", func(t *testing.T) {
		x := exchange("GET", "/productpage?u=1", "X-Ext-Authz", "allow", "Cookie", "secret", "X-B3-Traceid", "abc", "X-Tag", "client", "Authorization", "Bearer t")
		r := run(t, f, x, "")
		if r.status != filters.Continue {
			t.Fatalf("status %v, reply %+v", r.status, r.reply)
		}
		req, _ := seen.lastHTTP(t)
		if req.Method != "GET" || req.URL.RequestURI() != "/check/productpage?u=1" || req.Host != "bookinfo.example" {
			t.Errorf("authorization request %s %s host %s, want GET /check/productpage?u=1 host bookinfo.example", req.Method, req.URL.RequestURI(), req.Host)
		}
		if req.Header.Get("X-Ext-Authz") != "allow" || req.Header.Get("X-B3-Traceid") != "abc" || req.Header.Get("X-Added") != "by-gateway" {
			t.Errorf("allowed headers missing from the check: %v", req.Header)
		}
		if req.Header.Get("Cookie") != "" {
			t.Errorf("a header outside allowed_headers reached the authorizer: %v", req.Header)
		}
		if req.Header.Get("Authorization") != "Bearer t" {
			t.Errorf("Authorization is always sent to an HTTP authorizer: %v", req.Header)
		}
		h := x.Request.Header
		if h.Get("X-Ext-Authz-Check-Result") != "allowed" || h.Get("X-User") != "alice" {
			t.Errorf("allowed_upstream_headers not set on the upstream request: %v", h)
		}
		if got := h.Values("X-Tag"); len(got) != 2 || got[0] != "client" || got[1] != "from-authz" {
			t.Errorf("X-Tag = %v, want client then the appended from-authz", got)
		}
		if r.resp.Get("X-Client-Note") != "checked" {
			t.Errorf("allowed_client_headers_on_success not on the response: %v", r.resp)
		}
	})
	t.Run("denied forwards status, headers and body", func(t *testing.T) {
		r := run(t, f, exchange("GET", "/productpage"), "")
		if r.status != filters.Stop || r.reply == nil {
			t.Fatalf("status %v, want Stop with a reply", r.status)
		}
		if r.reply.Status != 403 || !strings.Contains(r.reply.Body, "denied by ext_authz") || r.reply.Header.Get("X-Ext-Authz-Check-Result") != "denied" {
			t.Errorf("reply %+v", r.reply)
		}
		if r.reply.Details != "ext_authz_denied" || r.x.Info.ResponseFlags[0] != "UAEX" {
			t.Errorf("details %q flags %v, want ext_authz_denied and UAEX", r.reply.Details, r.x.Info.ResponseFlags)
		}
	})
	t.Run("denied with 401", func(t *testing.T) {
		r := run(t, f, exchange("GET", "/", "X-Ext-Authz", "unauthorized"), "")
		if r.reply == nil || r.reply.Status != 401 || r.reply.Body != "who are you?" || r.reply.Header.Get("Www-Authenticate") == "" {
			t.Errorf("reply %+v", r.reply)
		}
	})
	for name, want := range map[string]uint64{"http.ingress.ext_authz.ok": 1, "http.ingress.ext_authz.denied": 2} {
		if v := store.Counter(name).Value(); v != want {
			t.Errorf("%s = %d, want %d", name, v, want)
		}
	}
}

func TestHTTPAllowedClientHeaders(t *testing.T) {
	addr, _ := startHTTPAuthz(t)
	f := newFactory(t, `http_service {
		server_uri { uri: "http://authz" cluster: "authz" timeout { seconds: 1 } }
		authorization_response { allowed_client_headers { patterns { exact: "x-ext-authz-check-result" } } }
	} allowed_headers { patterns { exact: "x-ext-authz" } }`, clusters{"authz": addr}, nil)
	r := run(t, f, exchange("GET", "/", "X-Ext-Authz", "unauthorized"), "")
	if r.reply == nil || r.reply.Header.Get("X-Secret") != "" {
		t.Errorf("a header outside allowed_client_headers reached the client: %+v", r.reply)
	}
	if r.reply.Header.Get("Www-Authenticate") == "" {
		t.Errorf("WWW-Authenticate is always passed on a denial: %+v", r.reply.Header)
	}
}

func TestFailures(t *testing.T) {
	authz, _ := startHTTPAuthz(t)
	down := closedAddr(t)
	tests := []struct {
		name    string
		extra   string
		addr    string
		hdr     []string
		status  filters.Status
		code    int
		allowed string // X-Envoy-Auth-Failure-Mode-Allowed on the upstream request
	}{
		{"unreachable denies with 403", ``, down, nil, filters.Stop, 403, ""},
		{"status_on_error", `status_on_error { code: ServiceUnavailable }`, down, nil, filters.Stop, 503, ""},
		{"failure_mode_allow", `failure_mode_allow: true`, down, nil, filters.Continue, 0, ""},
		{"failure_mode_allow_header_add", `failure_mode_allow: true failure_mode_allow_header_add: true`, down, nil, filters.Continue, 0, "true"},
		{"timeout", ``, authz, []string{"X-Ext-Authz", "slow"}, filters.Stop, 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := stats.NewStore()
			f := newFactory(t, `http_service { server_uri { uri: "http://authz" cluster: "authz" timeout { nanos: 200000000 } } }
				allowed_headers { patterns { exact: "x-ext-authz" } } `+tt.extra, clusters{"authz": tt.addr}, store.Scope("http.ingress.").Filters())
			start := time.Now()
			r := run(t, f, exchange("GET", "/", tt.hdr...), "")
			if r.status != tt.status {
				t.Fatalf("status %v, want %v (reply %+v)", r.status, tt.status, r.reply)
			}
			if tt.code != 0 && (r.reply == nil || r.reply.Status != tt.code || r.reply.Details != "ext_authz_error") {
				t.Errorf("reply %+v, want %d ext_authz_error", r.reply, tt.code)
			}
			if got := r.x.Request.Header.Get("X-Envoy-Auth-Failure-Mode-Allowed"); got != tt.allowed {
				t.Errorf("x-envoy-auth-failure-mode-allowed = %q, want %q", got, tt.allowed)
			}
			if time.Since(start) > 900*time.Millisecond {
				t.Errorf("the check took %v, past its 200ms timeout", time.Since(start))
			}
			if v := store.Counter("http.ingress.ext_authz.error").Value(); v != 1 {
				t.Errorf("ext_authz.error = %d, want 1", v)
			}
		})
	}
}

func TestRequestBody(t *testing.T) {
	addr, seen := startHTTPAuthz(t)
	tests := []struct {
		name     string
		settings string
		body     string
		sent     string
		partial  string
		status   filters.Status
		code     int
	}{
		{"whole body", `max_request_bytes: 100`, "hello", "hello", "false", filters.Continue, 0},
		{"body at the limit", `max_request_bytes: 5`, "hello", "hello", "false", filters.Continue, 0},
		{"over the limit refused", `max_request_bytes: 4`, "hello", "", "", filters.Stop, 413},
		{"over the limit in part", `max_request_bytes: 4 allow_partial_message: true`, "hello", "hell", "true", filters.Continue, 0},
		{"no body", `max_request_bytes: 4`, "", "", "false", filters.Continue, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFactory(t, `http_service { server_uri { uri: "http://authz" cluster: "authz" timeout { seconds: 1 } } }
				allowed_headers { patterns { exact: "x-ext-authz" } } with_request_body { `+tt.settings+` }`, clusters{"authz": addr}, nil)
			before := seen.count()
			r := run(t, f, exchange("POST", "/upload", "X-Ext-Authz", "allow"), tt.body)
			if r.status != tt.status {
				t.Fatalf("status %v, want %v (reply %+v)", r.status, tt.status, r.reply)
			}
			if tt.code != 0 {
				if r.reply == nil || r.reply.Status != tt.code {
					t.Errorf("reply %+v, want %d", r.reply, tt.code)
				}
				if seen.count() != before {
					t.Error("the authorizer was called for a refused body")
				}
				return
			}
			req, body := seen.lastHTTP(t)
			if body != tt.sent || req.Header.Get("X-Envoy-Auth-Partial-Body") != tt.partial {
				t.Errorf("authorizer got body %q partial %q, want %q %q", body, req.Header.Get("X-Envoy-Auth-Partial-Body"), tt.sent, tt.partial)
			}
		})
	}
}

const grpcCfg = `grpc_service { envoy_grpc { cluster_name: "outbound|9000||ext-authz.foo.svc.cluster.local" authority: "ext-authz.foo.svc.cluster.local" } timeout { nanos: 300000000 } initial_metadata { key: "x-tenant" value: "t1" } }
transport_api_version: V3`

func TestGRPCService(t *testing.T) {
	addr, seen := startGRPCAuthz(t)
	cl := clusters{"outbound|9000||ext-authz.foo.svc.cluster.local": addr}
	store := stats.NewStore()
	f := newFactory(t, grpcCfg, cl, store.Scope("http.ingress.").Filters())

	t.Run("allowed", func(t *testing.T) {
		x := exchange("POST", "/reviews/1?x=y", "X-Ext-Authz", "allow", "X-Remove-Me", "1", "X-Tag", "client")
		x.Request.ContentLength = 0
		r := run(t, f, x, "")
		if r.status != filters.Continue {
			t.Fatalf("status %v reply %+v", r.status, r.reply)
		}
		req := seen.lastGRPC(t)
		a := req.GetAttributes()
		h := a.GetRequest().GetHttp()
		if h.GetMethod() != "POST" || h.GetPath() != "/reviews/1?x=y" || h.GetQuery() != "x=y" || h.GetHost() != "bookinfo.example" || h.GetId() != "req-1" {
			t.Errorf("http attributes %v", h)
		}
		if h.GetHeaders()["x-ext-authz"] != "allow" || h.GetHeaders()[":method"] != "POST" {
			t.Errorf("headers %v", h.GetHeaders())
		}
		if a.GetSource().GetAddress().GetSocketAddress().GetAddress() != "127.0.0.1" || a.GetDestination().GetAddress().GetSocketAddress().GetPortValue() != 8080 {
			t.Errorf("peers %v %v", a.GetSource(), a.GetDestination())
		}
		if md := seen.md[len(seen.md)-1]; len(md["x-tenant"]) != 1 || md["x-tenant"][0] != "t1" {
			t.Errorf("initial_metadata not sent: %v", md)
		}
		rh := x.Request.Header
		if rh.Get("X-Ext-Authz-Check-Result") != "allowed" || rh.Get("X-Remove-Me") != "" || len(rh.Values("X-Tag")) != 2 {
			t.Errorf("upstream headers %v", rh)
		}
		if r.resp.Get("X-Client-Note") != "checked" {
			t.Errorf("response headers %v", r.resp)
		}
		if md := x.Metadata[FilterName]; md["user"] != "alice" {
			t.Errorf("dynamic metadata %v", x.Metadata)
		}
	})
	t.Run("denied by default with 403", func(t *testing.T) {
		r := run(t, f, exchange("GET", "/"), "")
		if r.reply == nil || r.reply.Status != 403 || r.reply.Details != "ext_authz_denied" {
			t.Errorf("reply %+v", r.reply)
		}
	})
	t.Run("denied response", func(t *testing.T) {
		r := run(t, f, exchange("GET", "/", "X-Ext-Authz", "teapot"), "")
		if r.reply == nil || r.reply.Status != 401 || r.reply.Body != "no token" || r.reply.Header.Get("Www-Authenticate") != "Bearer" {
			t.Errorf("reply %+v", r.reply)
		}
	})
	t.Run("rpc error", func(t *testing.T) {
		r := run(t, f, exchange("GET", "/", "X-Ext-Authz", "error"), "")
		if r.reply == nil || r.reply.Status != 403 || r.reply.Details != "ext_authz_error" {
			t.Errorf("reply %+v", r.reply)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		r := run(t, f, exchange("GET", "/", "X-Ext-Authz", "slow"), "")
		if r.reply == nil || r.reply.Details != "ext_authz_error" || time.Since(start) > 900*time.Millisecond {
			t.Errorf("reply %+v after %v, want an error after the 300ms timeout", r.reply, time.Since(start))
		}
	})
	for name, want := range map[string]uint64{"http.ingress.ext_authz.ok": 1, "http.ingress.ext_authz.denied": 2, "http.ingress.ext_authz.error": 2} {
		if v := store.Counter(name).Value(); v != want {
			t.Errorf("%s = %d, want %d", name, v, want)
		}
	}
}

func TestGRPCUnreachable(t *testing.T) {
	f := newFactory(t, grpcCfg+` failure_mode_allow: true`, clusters{"outbound|9000||ext-authz.foo.svc.cluster.local": closedAddr(t)}, nil)
	if r := run(t, f, exchange("GET", "/", "X-Ext-Authz", "allow"), ""); r.status != filters.Continue {
		t.Errorf("failure_mode_allow: status %v reply %+v", r.status, r.reply)
	}
}

func TestGRPCPeerCertificateAndContext(t *testing.T) {
	addr, seen := startGRPCAuthz(t)
	f := newFactory(t, grpcCfg+` include_peer_certificate: true include_tls_session: true with_request_body { max_request_bytes: 64 pack_as_bytes: true }
		allowed_headers { patterns { exact: "x-ext-authz" } }`,
		clusters{"outbound|9000||ext-authz.foo.svc.cluster.local": addr}, nil)

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id, _ := url.Parse("spiffe://cluster.local/ns/default/sa/sleep")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), URIs: []*url.URL{id}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)

	rc, err := CompileRoute(&extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{CheckSettings: &extauthzv3.CheckSettings{
		ContextExtensions: map[string]string{"virtual_host": "bookinfo"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	x := exchange("POST", "/", "X-Ext-Authz", "allow", "Cookie", "c")
	x.Downstream.TLS = &tls.ConnectionState{ServerName: "bookinfo.example", PeerCertificates: []*x509.Certificate{cert}}
	x.Route = &testRoute{per: map[string]any{FilterName: rc}}
	if r := run(t, f, x, "raw"); r.status != filters.Continue {
		t.Fatalf("status %v reply %+v", r.status, r.reply)
	}
	a := seen.lastGRPC(t).GetAttributes()
	if a.GetSource().GetPrincipal() != "spiffe://cluster.local/ns/default/sa/sleep" {
		t.Errorf("source principal %q", a.GetSource().GetPrincipal())
	}
	if pemText, _ := url.QueryUnescape(a.GetSource().GetCertificate()); !strings.Contains(pemText, "BEGIN CERTIFICATE") {
		t.Errorf("certificate %q is not a URL-encoded PEM", a.GetSource().GetCertificate())
	}
	if a.GetTlsSession().GetSni() != "bookinfo.example" {
		t.Errorf("tls_session %v", a.GetTlsSession())
	}
	if a.GetContextExtensions()["virtual_host"] != "bookinfo" {
		t.Errorf("context extensions %v", a.GetContextExtensions())
	}
	if string(a.GetRequest().GetHttp().GetRawBody()) != "raw" {
		t.Errorf("raw body %q", a.GetRequest().GetHttp().GetRawBody())
	}
	if _, ok := a.GetRequest().GetHttp().GetHeaders()["cookie"]; ok {
		t.Error("a header outside allowed_headers reached the authorizer")
	}
}

// TestFilterEnabledMetadata is the shape istiod generates for CUSTOM
// policies: ext_authz runs only when the RBAC shadow rules before it
// matched an istio-ext-authz policy.
func TestFilterEnabledMetadata(t *testing.T) {
	addr, seen := startHTTPAuthz(t)
	f := newFactory(t, `http_service { server_uri { uri: "http://authz" cluster: "authz" timeout { seconds: 1 } } }
		filter_enabled_metadata { filter: "envoy.filters.http.rbac" path { key: "istio_ext_authz_shadow_effective_policy_id" } value { string_match { prefix: "istio-ext-authz" } } }`,
		clusters{"authz": addr}, nil)
	x := exchange("GET", "/")
	if r := run(t, f, x, ""); r.status != filters.Continue || seen.count() != 0 {
		t.Fatalf("no matching metadata: status %v, %d checks, want Continue without a check", r.status, seen.count())
	}
	x = exchange("GET", "/")
	x.SetMetadata("envoy.filters.http.rbac", "istio_ext_authz_shadow_effective_policy_id", "istio-ext-authz-ns[foo]-policy[ext]-rule[0]")
	if r := run(t, f, x, ""); r.status != filters.Stop || seen.count() != 1 {
		t.Errorf("matching metadata: status %v, %d checks, want a denying check", r.status, seen.count())
	}
}

func TestPerRouteDisabled(t *testing.T) {
	addr, seen := startHTTPAuthz(t)
	f := newFactory(t, `http_service { server_uri { uri: "http://authz" cluster: "authz" timeout { seconds: 1 } } }`, clusters{"authz": addr}, nil)
	rc, err := buildRoute(&extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	x := exchange("GET", "/")
	x.Route = &testRoute{per: map[string]any{FilterName: rc}}
	if fl := f.NewFilter(x); fl != nil || seen.count() != 0 {
		t.Errorf("disabled route: filter %v, %d checks", fl, seen.count())
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct{ name, cfg, want string }{
		{"no service", ``, "services: one of http_service or grpc_service"},
		{"no timeout", `http_service { server_uri { uri: "http://a" cluster: "a" } }`, "http_service.server_uri.timeout"},
		{"no cluster", `http_service { server_uri { uri: "http://a" timeout { seconds: 1 } } }`, "http_service.server_uri.cluster"},
		{"bad prefix", `http_service { server_uri { uri: "http://a" cluster: "a" timeout { seconds: 1 } } path_prefix: "x" }`, "path_prefix"},
		{"google grpc", `grpc_service { google_grpc { target_uri: "a:1" stat_prefix: "x" } }`, "grpc_service.google_grpc: not supported"},
		{"zero body", `grpc_service { envoy_grpc { cluster_name: "a" } } with_request_body {}`, "with_request_body.max_request_bytes"},
		{"bad regex", `grpc_service { envoy_grpc { cluster_name: "a" } } allowed_headers { patterns { safe_regex { regex: "(" } } }`, "allowed_headers.patterns[0].safe_regex"},
		{"bad status", `grpc_service { envoy_grpc { cluster_name: "a" } } status_on_error { code: 42 }`, "status_on_error.code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pb := &extauthzv3.ExtAuthz{}
			if err := prototext.Unmarshal([]byte(tt.cfg), pb); err != nil {
				t.Fatal(err)
			}
			_, err := Compile(pb)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	if _, ok := filters.Lookup(TypeURL); !ok {
		t.Errorf("%s not registered", TypeURL)
	}
	if _, ok := filters.LookupRouteConfig(PerRouteTypeURL); !ok {
		t.Errorf("%s not registered for routes", PerRouteTypeURL)
	}
}
