package extauthz

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/conformance/backend"
)

// clusters is the part of the gateway filters see, over real loopback
// servers: each cluster name is one address.
type clusters map[string]string

func (c clusters) RoundTrip(ctx context.Context, cluster string, req *http.Request) (*http.Response, error) {
	addr, ok := c[cluster]
	if !ok {
		return nil, fmt.Errorf("cluster %q not found", cluster)
	}
	r := req.Clone(ctx)
	r.URL.Scheme, r.URL.Host = "http", addr
	return http.DefaultTransport.RoundTrip(r)
}

func (c clusters) Dial(ctx context.Context, cluster string) (net.Conn, error) {
	addr, ok := c[cluster]
	if !ok {
		return nil, fmt.Errorf("cluster %q not found", cluster)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// seen is what an authorization server received.
type seen struct {
	mu   sync.Mutex
	http []*http.Request
	body []string
	grpc []*authv3.CheckRequest
	md   []map[string][]string
}

func (s *seen) lastHTTP(t *testing.T) (*http.Request, string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.http) == 0 {
		t.Fatal("the authorization server got no request")
	}
	return s.http[len(s.http)-1], s.body[len(s.body)-1]
}

func (s *seen) lastGRPC(t *testing.T) *authv3.CheckRequest {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.grpc) == 0 {
		t.Fatal("the authorization server got no Check")
	}
	return s.grpc[len(s.grpc)-1]
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.http) + len(s.grpc)
}

// startHTTPAuthz runs an authorization server behaving as Istio's
// ext-authz sample: x-ext-authz: allow is allowed, x-ext-authz: slow
// answers after a second, anything else is denied with 403.
func startHTTPAuthz(t testing.TB) (string, *seen) {
	t.Helper()
	s := &seen{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.http = append(s.http, r)
		s.body = append(s.body, string(b))
		s.mu.Unlock()
		switch r.Header.Get("X-Ext-Authz") {
		case "allow":
			w.Header().Set("X-Ext-Authz-Check-Result", "allowed")
			w.Header().Set("X-User", "alice")
			w.Header().Add("X-Tag", "from-authz")
			w.Header().Set("X-Client-Note", "checked")
			w.WriteHeader(http.StatusOK)
		case "slow":
			time.Sleep(time.Second)
			w.WriteHeader(http.StatusOK)
		case "unauthorized":
			w.Header().Set("WWW-Authenticate", `Bearer realm="waygate"`)
			w.Header().Set("X-Secret", "internal")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "who are you?")
		default:
			w.Header().Set("X-Ext-Authz-Check-Result", "denied")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "denied by ext_authz for not found header `x-ext-authz: allow` in the request")
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), s
}

// grpcAuthz is a real Authorization service with the sample's rules.
type grpcAuthz struct {
	authv3.UnimplementedAuthorizationServer
	s *seen
}

func (g *grpcAuthz) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	md := map[string][]string{}
	if m, ok := metadataFrom(ctx); ok {
		md = m
	}
	g.s.mu.Lock()
	g.s.grpc = append(g.s.grpc, proto.Clone(req).(*authv3.CheckRequest))
	g.s.md = append(g.s.md, md)
	g.s.mu.Unlock()
	switch req.GetAttributes().GetRequest().GetHttp().GetHeaders()["x-ext-authz"] {
	case "allow":
		meta, _ := structpb.NewStruct(map[string]any{"user": "alice", "groups": []any{"a", "b"}})
		return &authv3.CheckResponse{
			Status: &status.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers: []*corev3.HeaderValueOption{
					{Header: &corev3.HeaderValue{Key: "x-ext-authz-check-result", Value: "allowed"}},
					{Header: &corev3.HeaderValue{Key: "x-tag", Value: "from-authz"}, Append: wrapperspb.Bool(true)},
				},
				HeadersToRemove:      []string{"x-remove-me"},
				ResponseHeadersToAdd: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-client-note", Value: "checked"}}},
			}},
			DynamicMetadata: meta,
		}, nil
	case "error":
		return nil, fmt.Errorf("authorizer broke")
	case "slow":
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
		return &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.OK)}}, nil
	case "teapot":
		return &authv3.CheckResponse{
			Status: &status.Status{Code: int32(codes.PermissionDenied)},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status:  &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized},
				Headers: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "www-authenticate", Value: "Bearer"}}},
				Body:    "no token",
			}},
		}, nil
	}
	return &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.PermissionDenied)}}, nil
}

func startGRPCAuthz(t testing.TB) (string, *seen) {
	t.Helper()
	s := &seen{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	authv3.RegisterAuthorizationServer(srv, &grpcAuthz{s: s})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), s
}

// closedAddr is a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	addr, err := backend.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func lowerKeys(m map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

func metadataFrom(ctx context.Context) (map[string][]string, bool) {
	md, ok := grpcmd.FromIncomingContext(ctx)
	return lowerKeys(md), ok
}
