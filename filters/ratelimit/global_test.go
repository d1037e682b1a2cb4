package ratelimit

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	ratelimitconfv3 "github.com/envoyproxy/go-control-plane/envoy/config/ratelimit/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/rls"
	"github.com/waygate/waygate/gateway/rls/rlstest"
	"github.com/waygate/waygate/gateway/stats"
)

// dialer is the gateway side of a cluster with one endpoint.
type dialer struct{ addr string }

func (d dialer) RoundTrip(context.Context, string, *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("not used")
}

func (d dialer) Dial(ctx context.Context, cluster string) (net.Conn, error) {
	if cluster != "rls" {
		return nil, fmt.Errorf("cluster %q not found", cluster)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", d.addr)
}

// serveRLS serves impl over gRPC on loopback and returns its address.
func serveRLS(t *testing.T, impl rlsv3.RateLimitServiceServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	rlsv3.RegisterRateLimitServiceServer(gs, impl)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	return ln.Addr().String()
}

// startRLS runs the built-in service on a real Redis.
func startRLS(t *testing.T, config string) string {
	t.Helper()
	cfg, err := rls.Parse("rls.yaml", []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: rlstest.StartRedis(t)})
	t.Cleanup(func() { client.Close() })
	return serveRLS(t, rls.New(cfg, rls.Options{Redis: client}))
}

func globalProto(mod ...func(*rlv3.RateLimit)) *rlv3.RateLimit {
	c := &rlv3.RateLimit{
		Domain:  "edge",
		Timeout: durationpb.New(2 * time.Second),
		RateLimitService: &ratelimitconfv3.RateLimitServiceConfig{
			TransportApiVersion: corev3.ApiVersion_V3,
			GrpcService: &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "rls"}}},
		},
	}
	for _, m := range mod {
		m(c)
	}
	return c
}

func newGlobal(t *testing.T, addr string, st filters.Stats, mod ...func(*rlv3.RateLimit)) *GlobalFactory {
	t.Helper()
	f, err := NewGlobal(globalProto(mod...), filters.Env{Upstream: dialer{addr}, Stats: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// sendGlobal runs one request through the global filter and an upstream
// answering 200.
func sendGlobal(t *testing.T, f *GlobalFactory, x *filters.Exchange) (int, http.Header) {
	t.Helper()
	fl := f.NewFilter(x)
	if fl == nil {
		return 200, http.Header{}
	}
	gf := fl.(*globalFilter)
	if gf.OnRequestHeaders(x, true) == filters.Stop {
		r := x.LocalReply()
		return r.Status, r.Header
	}
	x.Response = filters.Response{Status: 200, Header: http.Header{}}
	gf.OnResponseHeaders(x, true)
	return 200, x.Response.Header
}

func TestGlobalPerClientLimit(t *testing.T) {
	addr := startRLS(t, `
domain: edge
descriptors:
- key: remote_address
  rate_limit: {unit: minute, requests_per_unit: 2}
`)
	store := stats.NewStore()
	f := newGlobal(t, addr, store.Scope("http.ingress.").Filters(), func(c *rlv3.RateLimit) {
		c.EnableXRatelimitHeaders = rlv3.RateLimit_DRAFT_VERSION_03
	})
	tbl := table(t, nil, prefixRoute("/", "backend", limit(remoteAction())))
	for i, want := range []int{200, 200, 429, 429} {
		st, h := sendGlobal(t, f, exchange(tbl, "10.0.0.1:1", "/"))
		if st != want {
			t.Fatalf("request %d: %d, want %d", i, st, want)
		}
		if got := h.Get(hdrLimit); got != "2, 2;w=60" {
			t.Errorf("request %d: x-ratelimit-limit %q", i, got)
		}
		if want == 429 && h.Get("X-Envoy-Ratelimited") != "true" {
			t.Errorf("no x-envoy-ratelimited on 429: %v", h)
		}
		if want == 200 && h.Get(hdrRemaining) != fmt.Sprint(1-i) {
			t.Errorf("request %d: remaining %q", i, h.Get(hdrRemaining))
		}
	}
	if st, _ := sendGlobal(t, f, exchange(tbl, "10.0.0.2:1", "/")); st != 200 {
		t.Errorf("second client: %d", st)
	}
	for name, want := range map[string]uint64{"ok": 3, "over_limit": 2} {
		if got := store.Counter("http.ingress.ratelimit." + name).Value(); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}

// scripted is a rate limit service answering what a test sets, and
// recording the requests it got.
type scripted struct {
	rlsv3.UnimplementedRateLimitServiceServer
	mu    sync.Mutex
	reqs  []*rlsv3.RateLimitRequest
	resp  *rlsv3.RateLimitResponse
	delay time.Duration
}

func (s *scripted) ShouldRateLimit(ctx context.Context, r *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	resp, delay := s.resp, s.delay
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return resp, nil
}

func (s *scripted) last() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		return nil
	}
	var out []string
	r := s.reqs[len(s.reqs)-1]
	for _, d := range r.GetDescriptors() {
		var es []string
		for _, e := range d.GetEntries() {
			es = append(es, e.GetKey()+"="+e.GetValue())
		}
		out = append(out, r.GetDomain()+":"+strings.Join(es, ","))
	}
	return out
}

func TestGlobalDescriptors(t *testing.T) {
	srv := &scripted{resp: &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK}}
	f := newGlobal(t, serveRLS(t, srv), nil)
	claim := &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_Metadata{Metadata: &routev3.RateLimit_Action_MetaData{
		DescriptorKey: "sub",
		MetadataKey: &metadatav3.MetadataKey{Key: "envoy.filters.http.jwt_authn", Path: []*metadatav3.MetadataKey_PathSegment{
			{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: "payload"}}, {Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: "sub"}}}},
		DefaultValue: "anonymous",
	}}}
	masked := &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_MaskedRemoteAddress_{MaskedRemoteAddress: &routev3.RateLimit_Action_MaskedRemoteAddress{}}}
	masked16 := &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_MaskedRemoteAddress_{MaskedRemoteAddress: &routev3.RateLimit_Action_MaskedRemoteAddress{}}}
	masked16.GetMaskedRemoteAddress().V4PrefixMaskLen = wrapperUInt32(16)
	hvm := &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_HeaderValueMatch_{HeaderValueMatch: &routev3.RateLimit_Action_HeaderValueMatch{
		DescriptorValue: "post",
		Headers:         []*routev3.HeaderMatcher{{Name: ":method", HeaderMatchSpecifier: &routev3.HeaderMatcher_ExactMatch{ExactMatch: "POST"}}},
	}}}
	dest := &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_DestinationCluster_{DestinationCluster: &routev3.RateLimit_Action_DestinationCluster{}}}
	optional := &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_RequestHeaders_{RequestHeaders: &routev3.RateLimit_Action_RequestHeaders{
		HeaderName: "x-tenant", DescriptorKey: "tenant", SkipIfAbsent: true}}}

	perRoute, _ := anypb.New(&rlv3.RateLimitPerRoute{Domain: "special", RateLimits: []*routev3.RateLimit{limit(genericAction("", "special"))}})
	special := prefixRoute("/special", "backend")
	special.TypedPerFilterConfig = map[string]*anypb.Any{GlobalFilterName: perRoute}
	staged := prefixRoute("/staged", "backend", &routev3.RateLimit{Stage: wrapperUInt32(1), Actions: []*routev3.RateLimit_Action{genericAction("", "other-stage")}})
	tbl := table(t, []*routev3.RateLimit{limit(genericAction("vh", "all"))},
		prefixRoute("/claims", "backend", limit(claim)),
		prefixRoute("/masked", "backend", limit(masked), limit(masked16)),
		prefixRoute("/headers", "backend", limit(headerAction("x-user", "user"), hvm), limit(dest, optional)),
		special, staged,
		prefixRoute("/vhost", "backend"),
	)
	tests := []struct {
		name, path string
		hdr        []string
		jwtSub     string
		method     string
		want       []string
	}{
		{name: "jwt claim", path: "/claims", jwtSub: "alice", want: []string{"edge:sub=alice"}},
		{name: "jwt claim default", path: "/claims", want: []string{"edge:sub=anonymous"}},
		{name: "masked remote address", path: "/masked", want: []string{"edge:masked_remote_address=10.1.2.3/32", "edge:masked_remote_address=10.1.0.0/16"}},
		{name: "header and header match", path: "/headers", method: "POST", hdr: []string{"X-User", "bob", "X-Tenant", "t1"},
			want: []string{"edge:user=bob,header_match=post", "edge:destination_cluster=backend,tenant=t1"}},
		{name: "header match fails drops descriptor", path: "/headers", hdr: []string{"X-User", "bob"}, want: []string{"edge:destination_cluster=backend"}},
		{name: "missing header drops descriptor", path: "/headers", method: "POST", want: []string{"edge:destination_cluster=backend"}},
		{name: "per-route domain and limits", path: "/special", want: []string{"special:generic_key=special"}},
		{name: "route limits of another stage", path: "/staged", want: nil},
		{name: "virtual host limits when the route has none", path: "/vhost", want: []string{"edge:vh=all"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.mu.Lock()
			srv.reqs = nil
			srv.mu.Unlock()
			x := exchange(tbl, "10.1.2.3:4", tt.path, tt.hdr...)
			if tt.method != "" {
				x.Request.Method = tt.method
			}
			if tt.jwtSub != "" {
				x.SetMetadata("envoy.filters.http.jwt_authn", "payload", map[string]any{"sub": tt.jwtSub})
			}
			if st, _ := sendGlobal(t, f, x); st != 200 {
				t.Fatalf("status %d", st)
			}
			if got := srv.last(); strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("descriptors %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGlobalServiceAnswers(t *testing.T) {
	tbl := table(t, nil, prefixRoute("/", "backend", limit(genericAction("", "k"))))
	srv := &scripted{}
	addr := serveRLS(t, srv)
	f := newGlobal(t, addr, nil, func(c *rlv3.RateLimit) {
		c.ResponseHeadersToAdd = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-policy", Value: "edge"}}}
	})

	srv.resp = &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK,
		RequestHeadersToAdd:  []*corev3.HeaderValue{{Key: "x-quota-tier", Value: "gold"}},
		ResponseHeadersToAdd: []*corev3.HeaderValue{{Key: "x-quota-left", Value: "9"}}}
	x := exchange(tbl, "10.0.0.1:1", "/")
	st, h := sendGlobal(t, f, x)
	if st != 200 || x.Request.Header.Get("X-Quota-Tier") != "gold" || h.Get("X-Quota-Left") != "9" {
		t.Errorf("OK answer: %d request %v response %v", st, x.Request.Header, h)
	}

	srv.resp = &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OVER_LIMIT, RawBody: []byte("slow down"),
		ResponseHeadersToAdd: []*corev3.HeaderValue{{Key: "x-quota-left", Value: "0"}}}
	x = exchange(tbl, "10.0.0.1:1", "/")
	st, h = sendGlobal(t, f, x)
	r := x.LocalReply()
	if st != 429 || r.Body != "slow down" || h.Get("X-Quota-Left") != "0" || h.Get("X-Policy") != "edge" || h.Get("X-Envoy-Ratelimited") != "true" {
		t.Errorf("OVER_LIMIT answer: %d %q %v", st, r.Body, h)
	}
	if r.Details != "request_rate_limited" || r.Flag != "RL" {
		t.Errorf("details %q flag %q", r.Details, r.Flag)
	}
	x = exchange(tbl, "10.0.0.1:1", "/", "Content-Type", "application/grpc")
	sendGlobal(t, f, x)
	if r := x.LocalReply(); r.Status != 200 || r.Header.Get("Grpc-Status") != "14" {
		t.Errorf("gRPC over limit: %d %v", r.Status, r.Header)
	}
}

func TestGlobalFailureModes(t *testing.T) {
	tbl := table(t, nil, prefixRoute("/", "backend", limit(genericAction("", "k"))))
	slow := &scripted{resp: &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OVER_LIMIT}, delay: time.Second}
	slowAddr := serveRLS(t, slow)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := ln.Addr().String()
	ln.Close()
	tests := []struct {
		name   string
		addr   string
		deny   bool
		status int
		flag   string
	}{
		{"service down allows", down, false, 200, ""},
		{"service down denies with failure_mode_deny", down, true, 500, "RLSE"},
		{"default 20ms timeout allows", slowAddr, false, 200, ""},
		{"timeout denies with failure_mode_deny", slowAddr, true, 500, "RLSE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := stats.NewStore()
			f := newGlobal(t, tt.addr, store.Root().Filters(), func(c *rlv3.RateLimit) {
				c.Timeout = nil // Envoy's 20ms
				c.FailureModeDeny = tt.deny
			})
			x := exchange(tbl, "10.0.0.1:1", "/")
			start := time.Now()
			st, _ := sendGlobal(t, f, x)
			if took := time.Since(start); took > 500*time.Millisecond {
				t.Errorf("took %v, want about the 20ms timeout", took)
			}
			if st != tt.status {
				t.Errorf("status %d, want %d", st, tt.status)
			}
			if tt.flag != "" && (len(x.Info.ResponseFlags) == 0 || x.Info.ResponseFlags[0] != tt.flag) {
				t.Errorf("flags %v", x.Info.ResponseFlags)
			}
			if store.Counter("ratelimit.error").Value() != 1 {
				t.Errorf("ratelimit.error = %d", store.Counter("ratelimit.error").Value())
			}
		})
	}
}

func TestGlobalCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*rlv3.RateLimit)
		want string
	}{
		{"no domain", func(c *rlv3.RateLimit) { c.Domain = "" }, "domain"},
		{"no service", func(c *rlv3.RateLimit) { c.RateLimitService = nil }, "rate_limit_service.grpc_service"},
		{"google grpc", func(c *rlv3.RateLimit) {
			c.RateLimitService.GrpcService.TargetSpecifier = &corev3.GrpcService_GoogleGrpc_{GoogleGrpc: &corev3.GrpcService_GoogleGrpc{TargetUri: "x"}}
		}, "envoy_grpc.cluster_name"},
		{"request type", func(c *rlv3.RateLimit) { c.RequestType = "sometimes" }, "request_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewGlobal(globalProto(tt.mod), filters.Env{Upstream: dialer{}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to name %q", err, tt.want)
			}
		})
	}
	if _, err := NewGlobal(globalProto(), filters.Env{}); err == nil {
		t.Error("built without an upstream that can dial")
	}
}

// BenchmarkGlobalOK is one request through the global filter with the
// service answering OK over gRPC on loopback.
func BenchmarkGlobalOK(b *testing.B) {
	srv := &scripted{resp: &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	rlsv3.RegisterRateLimitServiceServer(gs, srv)
	go gs.Serve(ln)
	defer gs.Stop()
	f, err := NewGlobal(globalProto(), filters.Env{Upstream: dialer{ln.Addr().String()}})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	tbl := table(b, nil, prefixRoute("/", "backend", limit(remoteAction())))
	x := exchange(tbl, "10.0.0.1:1", "/")
	b.ReportAllocs()
	for b.Loop() {
		srv.mu.Lock()
		srv.reqs = srv.reqs[:0]
		srv.mu.Unlock()
		if f.NewFilter(x).(*globalFilter).OnRequestHeaders(x, true) != filters.Continue {
			b.Fatal("stopped")
		}
	}
}
