package router_test

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// The route timeout is the upstream connection's read deadline (see
// upstream.Cluster.Send); these tests cover where it applies and that a
// pooled connection does not carry it into its next request.

// TestDeadlineCoversEveryPhase: the route timeout bounds the wait for a
// connection held by another request, the response head, and the body
// (504 before the head went out, a reset after).
func TestDeadlineCoversEveryPhase(t *testing.T) {
	var conns atomic.Int64
	hold := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			wait := func() {
				select {
				case <-hold:
				case <-r.Context().Done():
				}
			}
			switch r.URL.Path {
			case "/hold", "/t/hold":
				wait()
			case "/t/body":
				w.Header().Set("Content-Length", "10")
				io.WriteString(w, "12345")
				http.NewResponseController(w).Flush()
				wait()
			}
			io.WriteString(w, "ok")
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { close(hold); srv.Close() })

	one := hcmtest.StaticCluster("one", ln.Addr().String())
	one.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
		MaxConnections: wrapperspb.UInt32(1), MaxPendingRequests: wrapperspb.UInt32(10),
	}}}
	gw := start(t, nil, []*routev3.Route{
		route("/t/", "one", timeout(150*time.Millisecond)),
		route("/", "one", timeout(0)),
	}, one)

	// A reused connection outlives the deadline of the request before.
	for i := range 3 {
		if r := do(t, hcmtest.Client(), "GET", gw.URL+"/t/fast", ""); r.status != 200 || r.body != "ok" {
			t.Fatalf("request %d: %d %q", i, r.status, r.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d upstream connections for 3 sequential requests, want 1", n)
	}

	start := time.Now()
	if r := do(t, hcmtest.Client(), "GET", gw.URL+"/t/hold", ""); r.status != 504 || r.body != "upstream request timeout" {
		t.Fatalf("held head: %d %q", r.status, r.body)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("held head answered after %v", d)
	}

	// The one connection is busy with a request without timeout: the
	// next one waits as pending, within its route timeout.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = hcmtest.Client().Get(gw.URL + "/hold")
	}()
	time.Sleep(50 * time.Millisecond)
	start = time.Now()
	if r := do(t, hcmtest.Client(), "GET", gw.URL+"/t/fast", ""); r.status != 504 {
		t.Fatalf("pending past the route timeout: %d %q", r.status, r.body)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("pending request answered after %v", d)
	}
	hold <- struct{}{}
	wg.Wait()

	// The head went out: the body's timeout can only cut the response.
	resp, err := hcmtest.Client().Get(gw.URL + "/t/body")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || err == nil {
		t.Fatalf("body past the route timeout: %d, %q, %v; want a cut 200", resp.StatusCode, b, err)
	}
}

// TestClientGoneAbortsUpstream: a client that closes its connection
// while the backend has not answered ends the upstream exchange too.
func TestClientGoneAbortsUpstream(t *testing.T) {
	canceled := make(chan struct{}, 1)
	backend := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			canceled <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	})
	gw := start(t, nil, []*routev3.Route{route("/", "b", timeout(10*time.Second))}, hcmtest.StaticCluster("b", backend))
	c, err := net.Dial("tcp", gw.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // past the gateway's wait before it watches for a client gone
	c.Close()
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request outlived its client")
	}
}
