package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// startHTTPAuthorizer runs an authorization service as Istio's ext-authz
// sample does: x-ext-authz: allow passes, anything else gets 403.
func startHTTPAuthorizer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Ext-Authz") == "allow" {
			w.Header().Set("X-Ext-Authz-Check-Result", "allowed")
			w.Header().Set("X-Checked-Path", r.URL.Path)
			return
		}
		w.Header().Set("X-Ext-Authz-Check-Result", "denied")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "denied by ext_authz for not found header `x-ext-authz: allow` in the request")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// grpcAuthorizer allows requests with x-ext-authz: allow whose body does
// not say "forbidden".
type grpcAuthorizer struct {
	authv3.UnimplementedAuthorizationServer
}

func (grpcAuthorizer) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp()
	if h.GetHeaders()["x-ext-authz"] == "allow" && !strings.Contains(h.GetBody(), "forbidden") {
		return &authv3.CheckResponse{
			Status: &status.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-authz-body", Value: h.GetBody()}}},
			}},
		}, nil
	}
	return &authv3.CheckResponse{
		Status: &status.Status{Code: int32(codes.PermissionDenied)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized},
			Body:   "grpc authorizer says no",
		}},
	}, nil
}

func startGRPCAuthorizer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	authv3.RegisterAuthorizationServer(g, grpcAuthorizer{})
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	return ln.Addr().String()
}

func mustAnyT(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// authzListener is a listener whose chain is ext_authz then the router.
func authzListener(t *testing.T, name string, port int, rds string, cfg *extauthzv3.ExtAuthz) *listenerv3.Listener {
	t.Helper()
	l := httpListener(name, port, rds)
	h := &hcmv3.HttpConnectionManager{}
	if err := l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(h); err != nil {
		t.Fatal(err)
	}
	h.HttpFilters = append([]*hcmv3.HttpFilter{{Name: "envoy.filters.http.ext_authz", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAnyT(t, cfg)}}}, h.HttpFilters...)
	l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAnyT(t, h)}
	return l
}

// waygate proxy runs istiod-shaped ext_authz filters against real HTTP
// and gRPC authorizers: allowed requests reach the backend with the
// authorizer's headers, denied ones get its status and body, a route can
// turn the check off, and the gRPC check sees the request body.
func TestProxyExtAuthz(t *testing.T) {
	be := startBackend(t, "echo", "v1")
	httpAuthz, grpcAuthz := startHTTPAuthorizer(t), startGRPCAuthorizer(t)
	httpPort, grpcPort := freePort(t), freePort(t)

	httpCfg := &extauthzv3.ExtAuthz{
		TransportApiVersion: corev3.ApiVersion_V3,
		Services: &extauthzv3.ExtAuthz_HttpService{HttpService: &extauthzv3.HttpService{
			ServerUri:  &corev3.HttpUri{Uri: "http://ext-authz", HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: "authz-http"}, Timeout: durationpb.New(2 * time.Second)},
			PathPrefix: "/check",
			AuthorizationResponse: &extauthzv3.AuthorizationResponse{
				AllowedUpstreamHeaders: &matcherv3.ListStringMatcher{Patterns: []*matcherv3.StringMatcher{
					{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "x-ext-authz"}},
					{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "x-checked-path"}},
				}},
			},
		}},
		AllowedHeaders: &matcherv3.ListStringMatcher{Patterns: []*matcherv3.StringMatcher{{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "x-ext-authz"}}}},
	}
	grpcCfg := &extauthzv3.ExtAuthz{
		TransportApiVersion: corev3.ApiVersion_V3,
		Services: &extauthzv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "authz-grpc"}},
			Timeout:         durationpb.New(2 * time.Second),
		}},
		WithRequestBody: &extauthzv3.BufferSettings{MaxRequestBytes: 1024},
	}
	disabled := mustAnyT(t, &extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true}})
	route := &routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{{
		Name: "all", Domains: []string{"*"},
		Routes: []*routev3.Route{
			{Match: prefix("/public"), Action: toCluster("echo"), TypedPerFilterConfig: map[string]*anypb.Any{"envoy.filters.http.ext_authz": disabled}},
			{Match: prefix("/"), Action: toCluster("echo")},
		},
	}}}
	xds := startXDS(t)
	xds.push(t, "node-1", "1", map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {
			authzListener(t, "http-authz", httpPort, "r", httpCfg),
			authzListener(t, "grpc-authz", grpcPort, "r", grpcCfg),
		},
		resourcev3.RouteType:    {route},
		resourcev3.ClusterType:  {edsCluster("echo"), edsCluster("authz-http"), edsCluster("authz-grpc")},
		resourcev3.EndpointType: {assignment("echo", be.Addr()), assignment("authz-http", httpAuthz), assignment("authz-grpc", grpcAuthz)},
	})
	p := startProxy(t, xds.addr, "node-1")
	p.waitReady(t)
	cl := &http.Client{Timeout: 5 * time.Second}
	do := func(method, url, body string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	httpBase := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitFor(t, func() bool {
		resp, err := cl.Get(httpBase + "/public/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	t.Run("http allowed", func(t *testing.T) {
		resp, body := do("GET", httpBase+"/productpage", "", map[string]string{"x-ext-authz": "allow"})
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		e := decodeEcho(t, []byte(body))
		if e.Headers["x-ext-authz-check-result"] != "allowed" || e.Headers["x-checked-path"] != "/check/productpage" {
			t.Errorf("backend headers %v, want the authorizer's x-ext-authz-check-result and x-checked-path", e.Headers)
		}
	})
	t.Run("http denied", func(t *testing.T) {
		resp, body := do("GET", httpBase+"/productpage", "", map[string]string{"x-ext-authz": "deny"})
		if resp.StatusCode != 403 || !strings.Contains(body, "denied by ext_authz") || resp.Header.Get("x-ext-authz-check-result") != "denied" {
			t.Errorf("got %d %q %v, want the authorizer's 403, body and header", resp.StatusCode, body, resp.Header)
		}
	})
	t.Run("route disables the check", func(t *testing.T) {
		if resp, body := do("GET", httpBase+"/public/x", "", nil); resp.StatusCode != 200 {
			t.Errorf("status %d: %s", resp.StatusCode, body)
		}
	})
	grpcBase := fmt.Sprintf("http://127.0.0.1:%d", grpcPort)
	t.Run("grpc allowed with body", func(t *testing.T) {
		resp, body := do("POST", grpcBase+"/reviews", "hello authz", map[string]string{"x-ext-authz": "allow"})
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		e := decodeEcho(t, []byte(body))
		if e.Headers["x-authz-body"] != "hello authz" || e.BodyBytes != int64(len("hello authz")) {
			t.Errorf("backend saw x-authz-body %q and %d body bytes", e.Headers["x-authz-body"], e.BodyBytes)
		}
	})
	t.Run("grpc denied by body", func(t *testing.T) {
		resp, body := do("POST", grpcBase+"/reviews", "this is forbidden", map[string]string{"x-ext-authz": "allow"})
		if resp.StatusCode != 401 || body != "grpc authorizer says no" {
			t.Errorf("got %d %q, want 401 from the authorizer", resp.StatusCode, body)
		}
	})
	t.Run("grpc denied", func(t *testing.T) {
		if resp, body := do("GET", grpcBase+"/reviews", "", nil); resp.StatusCode != 401 {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})
}
