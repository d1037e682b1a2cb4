package wasm

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/waygate/waygate/filters"
)

func init() {
	testPlugins = append(testPlugins, struct {
		name, dir string
		reactor   bool
	}{"rawabi", "rawabi", true})
}

// echoServer is a gRPC server on loopback serving test.Echo with raw
// messages: Unary answers "echo:<message> md=<x-md> svc=<x-svc>", Stream
// answers each message and sends initial and trailing metadata, Fail
// fails with PERMISSION_DENIED, Hang reports its start on started,
// waits for the client to go and reports it on hung.
type echoServer struct {
	addr          string
	started, hung chan string
}

func startEchoServer(t testing.TB) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{addr: ln.Addr().String(), started: make(chan string, 16), hung: make(chan string, 16)}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(e.handle))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return e
}

func (e *echoServer) handle(_ any, ss grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(ss)
	md, _ := metadata.FromIncomingContext(ss.Context())
	switch method {
	case "/test.Echo/Unary":
		var m []byte
		if err := ss.RecvMsg(&m); err != nil {
			return err
		}
		out := []byte(fmt.Sprintf("echo:%s md=%s svc=%s", m, strings.Join(md["x-md"], ","), strings.Join(md["x-svc"], ",")))
		return ss.SendMsg(&out)
	case "/test.Echo/Stream":
		ss.SetHeader(metadata.Pairs("x-initial", "yes"))
		for {
			var m []byte
			if err := ss.RecvMsg(&m); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return err
			}
			out := append([]byte("echo:"), m...)
			if err := ss.SendMsg(&out); err != nil {
				return err
			}
		}
		ss.SetTrailer(metadata.Pairs("x-trailing", "done"))
		return nil
	case "/test.Echo/Fail":
		return grpcstatus.Error(codes.PermissionDenied, "denied")
	case "/test.Echo/Hang":
		e.started <- method
		<-ss.Context().Done()
		e.hung <- method
		return ss.Context().Err()
	}
	return grpcstatus.Error(codes.Unimplemented, method)
}

// clusterDialer reaches clusters by name, as the gateway's cluster
// caller does; a cluster it lacks does not exist.
type clusterDialer map[string]string

func (d clusterDialer) RoundTrip(context.Context, string, *http.Request) (*http.Response, error) {
	return nil, errors.New("no http clusters")
}

// HasCluster tells the clusters it knows, as the gateway's cluster
// caller tells those of its snapshot.
func (d clusterDialer) HasCluster(cluster string) bool {
	_, ok := d[cluster]
	return ok
}

func (d clusterDialer) Dial(ctx context.Context, cluster string) (net.Conn, error) {
	addr, ok := d[cluster]
	if !ok {
		return nil, fmt.Errorf("cluster %q not found", cluster)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", addr)
}

// grpcFactory builds a rawabi plugin configured with conf whose calls
// reach the clusters of up.
func grpcFactory(t *testing.T, conf string, up filters.Upstream) *Factory {
	t.Helper()
	f, err := New(context.Background(), pluginConf(t, "rawabi", conf), filters.Env{Log: testLog(t), Upstream: up}, Options{PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// requestHeaders runs one stream's request headers; it returns the
// local reply's body, or the request headers when the stream went on.
func requestHeaders(t *testing.T, f *Factory, hdr ...string) (string, http.Header) {
	t.Helper()
	x := exchange(hdr...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	x.Context = ctx
	fl := f.NewFilter(x).(*filter)
	defer fl.OnDone(x)
	st := fl.OnRequestHeaders(x, true)
	if st == filters.Continue {
		return "", x.Request.Header
	}
	r := x.LocalReply()
	if r == nil {
		t.Fatalf("stream stopped without a reply (context: %v)", ctx.Err())
	}
	return r.Body, nil
}

func serviceHex(t *testing.T, gs *corev3.GrpcService) string {
	b, err := proto.Marshal(gs)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestGRPCCall makes unary calls from a plugin to a gRPC server on
// loopback, by cluster name, by serialized GrpcService (envoy_grpc and
// google_grpc), and to failing methods and clusters: the answer, or the
// close with its status, reaches the root context, which answers the
// paused stream.
func TestGRPCCall(t *testing.T) {
	srv := startEchoServer(t)
	up := clusterDialer{"echo": srv.addr, "refused": "127.0.0.1:1"}
	envoyGRPC := serviceHex(t, &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "echo"}},
		InitialMetadata: []*corev3.HeaderValue{{Key: "x-svc", Value: "envoy"}},
	})
	googleGRPC := serviceHex(t, &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_GoogleGrpc_{GoogleGrpc: &corev3.GrpcService_GoogleGrpc{TargetUri: srv.addr, StatPrefix: "echo"}},
		InitialMetadata: []*corev3.HeaderValue{{Key: "x-svc", Value: "google"}},
	})
	timedOut := serviceHex(t, &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "echo"}},
		Timeout:         durationpb.New(50 * time.Millisecond),
	})
	missingGRPC := serviceHex(t, &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "missing"}},
	})
	for _, c := range []struct {
		name, conf, want string
	}{
		{"cluster name", "upstream=echo", "receive echo:hi md=from-plugin svc= root=rawabi_root"},
		{"envoy_grpc", "upstream_hex=" + envoyGRPC, "receive echo:hi md=from-plugin svc=envoy root=rawabi_root"},
		{"google_grpc", "upstream_hex=" + googleGRPC, "receive echo:hi md=from-plugin svc=google root=rawabi_root"},
		{"error status", "upstream=echo method=Fail", "close code=7 status=7 message=denied initial= msgs= trailing= root=rawabi_root"},
		{"call timeout", "upstream=echo method=Hang timeout=50", "close code=4 status=4"},
		{"service timeout", "upstream_hex=" + timedOut + " method=Hang", "close code=4 status=4"},
		// A cluster name the gateway does not have is refused at once
		// with PARSE_FAILURE (4), as Envoy does; a GrpcService naming
		// one is taken, and its call fails when sent (UNAVAILABLE).
		{"unknown cluster", "upstream=missing", "grpc_call status 4"},
		{"unknown envoy_grpc cluster", "upstream_hex=" + missingGRPC, "close code=14 status=14"},
		{"refused endpoint", "upstream=refused", "close code=14 status=14"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := grpcFactory(t, "mode=grpc-unary "+c.conf, up)
			body, _ := requestHeaders(t, f, "X-Msg", "hi")
			if !strings.HasPrefix(body, c.want) {
				t.Errorf("reply %q, want it to start with %q", body, c.want)
			}
		})
	}
}

// TestGRPCStream opens a stream, sends two messages and half-closes it
// (proxy_grpc_close): the initial metadata, both answers, the trailing
// metadata and the close reach the plugin in order.
func TestGRPCStream(t *testing.T) {
	srv := startEchoServer(t)
	f := grpcFactory(t, "mode=grpc-stream upstream=echo", clusterDialer{"echo": srv.addr})
	body, _ := requestHeaders(t, f)
	want := "close code=0 status=0 message= initial=yes msgs=echo:a,echo:b trailing=done root=rawabi_root"
	if body != want {
		t.Errorf("reply %q, want %q", body, want)
	}

	// A stream to a cluster name the gateway does not have is refused
	// at once with PARSE_FAILURE, as Envoy's.
	f = grpcFactory(t, "mode=grpc-stream upstream=missing", clusterDialer{"echo": srv.addr})
	if body, _ := requestHeaders(t, f); body != "grpc_stream status 4" {
		t.Errorf("stream to an unknown cluster: reply %q, want %q", body, "grpc_stream status 4")
	}
}

// TestGRPCCancel cancels a call in progress: the server sees the call
// go, a second cancel finds nothing (NOT_FOUND), and no callback ever
// reaches the plugin.
func TestGRPCCancel(t *testing.T) {
	srv := startEchoServer(t)
	f := grpcFactory(t, "mode=grpc-cancel upstream=echo", clusterDialer{"echo": srv.addr})
	expect := func(h http.Header, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if h.Get(k) != v {
				t.Errorf("%s = %q, want %q", k, h.Get(k), v)
			}
		}
	}
	wait := func(ch chan string, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("the server never saw the call %s", what)
		}
	}
	_, h := requestHeaders(t, f)
	expect(h, map[string]string{"X-Call": "0", "X-Grpc-Callbacks": "0"})
	wait(srv.started, "arrive")
	_, h = requestHeaders(t, f)
	expect(h, map[string]string{"X-Cancel": "0", "X-Cancel-Again": "1", "X-Grpc-Callbacks": "0"})
	wait(srv.hung, "cancelled")
	time.Sleep(50 * time.Millisecond)
	_, h = requestHeaders(t, f)
	expect(h, map[string]string{"X-Call": "0", "X-Grpc-Callbacks": "0"})
}
