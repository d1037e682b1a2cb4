package upstream_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
	"github.com/waygate/waygate/gateway/stats"
	"github.com/waygate/waygate/gateway/upstream"
)

// limits sets the DEFAULT circuit breaker thresholds and the
// per-connection request limit the way Istio translates a
// DestinationRule's connectionPool.
func limits(maxConn, maxPending, maxReqPerConn uint32) func(*clusterv3.Cluster) {
	return func(c *clusterv3.Cluster) {
		c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			MaxConnections:     wrapperspb.UInt32(maxConn),
			MaxPendingRequests: wrapperspb.UInt32(maxPending),
			MaxRequests:        wrapperspb.UInt32(4294967295),
			MaxRetries:         wrapperspb.UInt32(4294967295),
		}}}
		if maxReqPerConn > 0 {
			opts := &upstreamhttpv3.HttpProtocolOptions{
				CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{MaxRequestsPerConnection: wrapperspb.UInt32(maxReqPerConn)},
				UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}},
				}},
			}
			a, err := anypb.New(opts)
			if err != nil {
				panic(err)
			}
			c.TypedExtensionProtocolOptions = map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": a}
		}
	}
}

// TestSeedCircuitBreaking is the seed's fortio exercise: with
// DestinationRule maxConnections 1, http1MaxPendingRequests 1 and
// maxRequestsPerConnection 1, one client at a time never trips the
// breaker, two sometimes do and three more often, each overflow a 503
// with x-envoy-overloaded.
//
// Every request needs a new connection, and, as in Envoy, a request
// waiting for one being opened is pending. Whether a second client's
// next request finds that slot taken depends on how long a connect
// takes against how fast a client turns around. In the seed's mesh a
// connect crosses pods and does an mTLS handshake; on loopback it takes
// microseconds. The test dials through a network that takes 2ms to
// connect, the order of a cross-pod handshake.
func TestSeedCircuitBreaking(t *testing.T) {
	b := startBackend(t, backendOpts("httpbin"))
	m := upstream.NewManager()
	m.Stats = stats.NewStore()
	t.Cleanup(m.Close)
	m.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		select {
		case <-time.After(2 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	gw := serve(t, m, cluster([]ep{{addr: b.Addr()}}, limits(1, 1, 1)), nil)
	const perClient = 20
	run := func(clients int) (overloaded, ok int) {
		var wg sync.WaitGroup
		var nOver, nOK atomic.Int64
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := hcmtest.Client()
				defer client.CloseIdleConnections()
				for j := 0; j < perClient; j++ {
					req, _ := http.NewRequest("GET", gw+"/get", nil)
					req.Header.Set("x-echo-delay", "10ms")
					resp, err := client.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch {
					case resp.StatusCode == 503 && resp.Header.Get("X-Envoy-Overloaded") == "true":
						nOver.Add(1)
					case resp.StatusCode == 200:
						nOK.Add(1)
					default:
						t.Errorf("status %d", resp.StatusCode)
					}
				}
			}()
		}
		wg.Wait()
		return int(nOver.Load()), int(nOK.Load())
	}
	var prev, total int
	for _, clients := range []int{1, 2, 3} {
		over, ok := run(clients)
		t.Logf("%d concurrent clients × %d requests: %d ok, %d overloaded (503 UO)", clients, perClient, ok, over)
		switch {
		case clients == 1 && over != 0:
			t.Errorf("one client: %d overloaded, want none", over)
		case clients > 1 && over == 0:
			t.Errorf("%d clients: no request overloaded, want some", clients)
		case clients == 3 && over <= prev:
			t.Errorf("3 clients: %d overloaded, want more than the %d of 2 clients", over, prev)
		}
		prev = over
		total += over
	}
	if got := counter(m.Stats, "cluster.c.upstream_rq_pending_overflow"); got != uint64(total) {
		t.Errorf("upstream_rq_pending_overflow = %d, want the %d overloaded requests", got, total)
	}
}

// TestPendingWaitsForConnection: with one connection allowed, a second
// request waits for it instead of failing, and is counted as having
// found max_connections reached.
func TestPendingWaitsForConnection(t *testing.T) {
	addr, conns := countingServer(t)
	_, cl, st := build(t, cluster([]ep{{addr: addr}}, limits(1, 10, 0)))
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := http.Header{"X-Echo-Delay": {"50ms"}}
			if _, status, err := send(t.Context(), cl, h); err != nil || status != 200 {
				t.Errorf("status %d, %v", status, err)
			}
		}()
	}
	wg.Wait()
	if got := conns.Load(); got != 1 {
		t.Errorf("backend saw %d connections, want 1", got)
	}
	if got := counter(st, "cluster.c.upstream_cx_overflow"); got == 0 {
		t.Errorf("upstream_cx_overflow = 0, want the requests that waited")
	}
	if got := counter(st, "cluster.c.upstream_rq_pending_overflow"); got != 0 {
		t.Errorf("upstream_rq_pending_overflow = %d, want 0", got)
	}
}

// TestMaxRetries: with max_retries 0 a retry overflows; the failed
// attempt's response is the answer and the backend sees one request.
func TestMaxRetries(t *testing.T) {
	bad := startBackend(t, backend.Options{FailPercent: 100})
	m := upstream.NewManager()
	m.Stats = stats.NewStore()
	t.Cleanup(m.Close)
	c := cluster([]ep{{addr: bad.Addr()}}, func(c *clusterv3.Cluster) {
		c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{MaxRetries: wrapperspb.UInt32(0)}}}
	})
	gw := serve(t, m, c, func(r *routev3.Route) {
		r.GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx", NumRetries: wrapperspb.UInt32(2)}
	})
	resp, err := hcmtest.Client().Get(gw + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("X-Envoy-Overloaded") != "" {
		t.Errorf("status %d overloaded %q, want the backend's own 503", resp.StatusCode, resp.Header.Get("X-Envoy-Overloaded"))
	}
	if got := bad.Requests(); got != 1 {
		t.Errorf("backend saw %d requests, want 1", got)
	}
	if got := counter(m.Stats, "cluster.c.upstream_rq_retry_overflow"); got != 1 {
		t.Errorf("upstream_rq_retry_overflow = %d, want 1", got)
	}
}

// serve runs a gateway routing every request to cluster c, built in m,
// with edit applied to the route.
func serve(t *testing.T, m *upstream.Manager, c *clusterv3.Cluster, edit func(*routev3.Route)) string {
	t.Helper()
	r := hcmtest.Prefix("/", c.GetName())
	if edit != nil {
		edit(r)
	}
	cfg, view := hcmtest.Compile(t, hcmtest.Options{HCM: hcmtest.HCM(t, hcmtest.Routes(r))})
	var err error
	if view.Clusters, err = m.Build(map[string]*clusterv3.Cluster{c.GetName(): c}, nil); err != nil {
		t.Fatal(err)
	}
	h := &hcm.Handler{Views: func() hcm.View { return view }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ConnContext: func(ctx context.Context, c net.Conn) context.Context {
		info := filters.Connection{Listener: "test"}
		info.RemoteAddr, _ = netip.ParseAddrPort(c.RemoteAddr().String())
		info.LocalAddr, _ = netip.ParseAddrPort(c.LocalAddr().String())
		return hcm.WithConn(ctx, &hcm.Conn{Config: cfg, Info: info})
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func backendOpts(service string) backend.Options { return backend.Options{Service: service} }

// TestMaxRequestsPerConnection counts the connections the backend sees
// for 10 sequential requests.
func TestMaxRequestsPerConnection(t *testing.T) {
	for _, tt := range []struct {
		perConn uint32
		want    int64
	}{{0, 1}, {1, 10}, {3, 4}, {10, 1}} {
		t.Run(fmt.Sprint("max ", tt.perConn), func(t *testing.T) {
			addr, conns := countingServer(t)
			edit := limits(1024, 1024, tt.perConn)
			_, cl, st := build(t, cluster([]ep{{addr: addr}}, edit))
			for i := 0; i < 10; i++ {
				if _, status, err := send(t.Context(), cl, nil); err != nil || status != 200 {
					t.Fatalf("request %d: %d %v", i, status, err)
				}
			}
			if got := conns.Load(); got != tt.want {
				t.Errorf("backend saw %d connections, want %d", got, tt.want)
			}
			if got := counter(st, "cluster.c.upstream_cx_total"); got != uint64(tt.want) {
				t.Errorf("upstream_cx_total = %d, want %d", got, tt.want)
			}
		})
	}
}

// countingServer answers 200 and counts the connections it accepts.
func countingServer(t testing.TB) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d, err := time.ParseDuration(r.Header.Get("x-echo-delay")); err == nil {
				time.Sleep(d)
			}
			io.WriteString(w, "ok")
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				n.Add(1)
			}
		},
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), &n
}

// TestRetryBudget: a retry budget replaces max_retries. With a floor of
// one retry in flight a request is retried though max_retries is 0; with
// no budget at all the retry overflows.
func TestRetryBudget(t *testing.T) {
	for _, c := range []struct {
		name      string
		budget    *clusterv3.CircuitBreakers_Thresholds_RetryBudget
		requests  int64
		overflows uint64
	}{
		{"a floor of one", &clusterv3.CircuitBreakers_Thresholds_RetryBudget{
			BudgetPercent: &typev3.Percent{Value: 0}, MinRetryConcurrency: wrapperspb.UInt32(1)}, 3, 0},
		{"no budget", &clusterv3.CircuitBreakers_Thresholds_RetryBudget{
			BudgetPercent: &typev3.Percent{Value: 0}, MinRetryConcurrency: wrapperspb.UInt32(0)}, 1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := startBackend(t, backend.Options{FailPercent: 100})
			m := upstream.NewManager()
			m.Stats = stats.NewStore()
			t.Cleanup(m.Close)
			cl := cluster([]ep{{addr: bad.Addr()}}, func(cl *clusterv3.Cluster) {
				cl.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
					MaxRetries: wrapperspb.UInt32(0), RetryBudget: c.budget,
				}}}
			})
			gw := serve(t, m, cl, func(r *routev3.Route) {
				r.GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx", NumRetries: wrapperspb.UInt32(2)}
			})
			resp, err := hcmtest.Client().Get(gw + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := bad.Requests(); got != c.requests {
				t.Errorf("backend saw %d requests, want %d", got, c.requests)
			}
			if got := counter(m.Stats, "cluster.c.upstream_rq_retry_overflow"); got != c.overflows {
				t.Errorf("upstream_rq_retry_overflow = %d, want %d", got, c.overflows)
			}
		})
	}
}
