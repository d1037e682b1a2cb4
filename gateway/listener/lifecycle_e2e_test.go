package listener_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/waygate/waygate/conformance/backend"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// startBackends starts echo backends for versions v1 and v2 as clusters
// "v1" and "v2", with routes "v1" and "v2" sending everything to them.
func startBackends(t *testing.T, g *gateway) {
	t.Helper()
	var routes []proto.Message
	for _, v := range []string{"v1", "v2"} {
		be, err := backend.Start(backend.Options{Service: "web", Version: v})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { be.Close() })
		g.addClusters(staticCluster(v, be.Addr()))
		routes = append(routes, routeAll(v, v))
	}
	g.mustApply(resourcev3.RouteType, routes...)
}

func httpListener(t *testing.T, name, addr, route string) *listenerv3.Listener {
	return newListener(name, addr, &listenerv3.FilterChain{Filters: []*listenerv3.Filter{httpFilter(t, route)}})
}

// getReused is get that also reports whether the request went on a
// connection opened before.
func getReused(t *testing.T, c *http.Client, u string) (*http.Response, echo, bool) {
	t.Helper()
	var reused bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var e echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp, e, reused
}

func TestListenerUpdateKeepsSocket(t *testing.T) {
	g := newGateway(t)
	startBackends(t, g)
	g.mustApply(resourcev3.ListenerType, httpListener(t, "http", "127.0.0.1:0", "v1"))
	addr := g.addr("http")
	u := "http://" + addr + "/"
	keep := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer keep.CloseIdleConnections()
	if _, e := get(t, keep, u); e.Version != "v1" {
		t.Fatalf("before the update got %q, want v1", e.Version)
	}

	g.mustApply(resourcev3.ListenerType, httpListener(t, "http", "127.0.0.1:0", "v2"))
	if a := g.addr("http"); a != addr {
		t.Fatalf("the update moved the listener from %s to %s", addr, a)
	}
	// The connection opened before the update still serves its request,
	// then closes so the client reconnects onto the new config.
	resp, e, reused := getReused(t, keep, u)
	if !reused || resp.StatusCode != http.StatusOK {
		t.Fatalf("kept-alive connection: reused %v, status %d", reused, resp.StatusCode)
	}
	if e.Version != "v1" || !resp.Close {
		t.Errorf("kept-alive connection got %q, close %v; want v1 and the connection closed after it", e.Version, resp.Close)
	}
	if _, e := get(t, plainClient(), u); e.Version != "v2" {
		t.Errorf("a new connection got %q, want v2", e.Version)
	}
	if _, e, reused := getReused(t, keep, u); reused || e.Version != "v2" {
		t.Errorf("the kept-alive client's next request: reused %v, got %q; want a new connection to v2", reused, e.Version)
	}
}

func TestListenerUpdateMovesHTTP2Connections(t *testing.T) {
	g := newGateway(t)
	startBackends(t, g)
	g.mustApply(resourcev3.ListenerType, httpListener(t, "http", "127.0.0.1:0", "v1"))
	u := "http://" + g.addr("http") + "/"
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	var dials atomic.Int32
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &p,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	defer c.CloseIdleConnections()
	if _, e := get(t, c, u); e.Version != "v1" {
		t.Fatalf("before the update got %q, want v1", e.Version)
	}
	g.mustApply(resourcev3.ListenerType, httpListener(t, "http", "127.0.0.1:0", "v2"))
	// The open connection may serve one more request on the old config;
	// its GOAWAY then sends the client to a new connection.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, e := get(t, c, u)
		if e.Version == "v2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an HTTP/2 connection from before the update still gets %q", e.Version)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := dials.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the first, and one after the update", n)
	}
}

// slowGet starts a request the backend answers after delay.
func slowGet(u string, delay time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("x-echo-delay", delay.String())
		resp, err := plainClient().Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		if _, err := io.ReadAll(resp.Body); err != nil {
			done <- err
			return
		}
		if resp.StatusCode != http.StatusOK {
			done <- errors.New(resp.Status)
			return
		}
		done <- nil
	}()
	return done
}

// waitRefused waits for connections to addr to be refused.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return
		}
		// A connection that raced the close may be reset instead.
		if err == nil {
			c.Close()
		} else if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial %s: %v, want connection refused", addr, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRemovedListenerDrains(t *testing.T) {
	g := newGateway(t)
	startBackends(t, g)
	g.mustApply(resourcev3.ListenerType,
		httpListener(t, "stays", "127.0.0.1:0", "v1"),
		httpListener(t, "goes", "127.0.0.1:0", "v1"))
	goes := g.addr("goes")
	inflight := slowGet("http://"+goes+"/", 500*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // let the request reach the backend

	g.mustApply(resourcev3.ListenerType, httpListener(t, "stays", "127.0.0.1:0", "v1"))
	waitRefused(t, goes)
	if err := <-inflight; err != nil {
		t.Errorf("in-flight request on the removed listener: %v, want 200", err)
	}
	if _, e := get(t, plainClient(), "http://"+g.addr("stays")+"/"); e.Version != "v1" {
		t.Errorf("the remaining listener answered %q", e.Version)
	}
}

func TestDrainWaitsForRequests(t *testing.T) {
	g := newGateway(t)
	startBackends(t, g)
	g.mustApply(resourcev3.ListenerType, httpListener(t, "http", "127.0.0.1:0", "v1"))
	addr := g.addr("http")
	inflight := slowGet("http://"+addr+"/", 500*time.Millisecond)
	time.Sleep(100 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.m.Drain(ctx)
	select {
	case err := <-inflight:
		if err != nil {
			t.Errorf("in-flight request: %v, want 200", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain returned before the in-flight request finished")
	}
	waitRefused(t, addr)
	if err := g.apply(resourcev3.ListenerType, httpListener(t, "http", "127.0.0.1:0", "v1")); err == nil {
		t.Error("a drained manager accepted new listeners")
	}
}

func TestDrainClosesTCPProxyConnectionsAtDeadline(t *testing.T) {
	g := newGateway(t)
	startTCPEchoes(t, g, "one")
	g.mustApply(resourcev3.ListenerType, newListener("tcp", "127.0.0.1:0", &listenerv3.FilterChain{
		Filters: []*listenerv3.Filter{tcpFilter(t, "tcp-one")},
	}))
	c, err := net.DialTimeout("tcp", g.addr("tcp"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "ping\n")
	buf := make([]byte, len("one ping\n"))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	g.m.Drain(ctx)
	// The idle connection is closed once the drain deadline passes.
	if n, err := c.Read(buf); err != io.EOF {
		t.Errorf("read after drain: %d bytes, %v; want EOF", n, err)
	}
}

func TestBindFailureKeepsListeners(t *testing.T) {
	g := newGateway(t)
	startBackends(t, g)
	g.mustApply(resourcev3.ListenerType, httpListener(t, "good", "127.0.0.1:0", "v1"))
	good := g.addr("good")

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	err = g.apply(resourcev3.ListenerType,
		httpListener(t, "good", "127.0.0.1:0", "v2"),
		httpListener(t, "also-new", "127.0.0.1:0", "v1"),
		httpListener(t, "bad", taken.Addr().String(), "v1"))
	if err == nil {
		t.Fatal("binding a port in use was accepted")
	}
	if !strings.Contains(err.Error(), `"bad"`) || !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Errorf("error %q does not name the listener and the address", err)
	}
	if a := g.m.Addr("also-new"); a != "" {
		t.Errorf("a listener of the rejected update is bound on %s", a)
	}
	if g.m.Addr("good") != good {
		t.Errorf("listener good moved to %s", g.m.Addr("good"))
	}
	if _, e := get(t, plainClient(), "http://"+good+"/"); e.Version != "v1" {
		t.Errorf("after the rejected update good answered %q, want the previous config's v1", e.Version)
	}
	if _, ok := g.b.Current().Listeners["bad"]; ok {
		t.Error("the rejected listener is in the snapshot")
	}
}

func TestNoChainMatchClosesConnection(t *testing.T) {
	g := newGateway(t)
	startBackends(t, g)
	l := httpListener(t, "http", "127.0.0.1:0", "v1")
	l.FilterChains[0].FilterChainMatch = &listenerv3.FilterChainMatch{TransportProtocol: "tls"}
	g.mustApply(resourcev3.ListenerType, l)
	c, err := net.DialTimeout("tcp", g.addr("http"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	// Closed with the request unread, so the kernel may send a reset.
	if b, err := io.ReadAll(c); len(b) != 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("plaintext on a TLS-only listener got %q %v, want the connection closed", b, err)
	}
}

func TestBindToPortFalseIsNotBound(t *testing.T) {
	g := newGateway(t)
	startBackends(t, g)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	// Its port is in use: binding it would fail the whole update.
	virtual := httpListener(t, "virtual", taken.Addr().String(), "v1")
	virtual.BindToPort = wrapperspb.Bool(false)
	g.mustApply(resourcev3.ListenerType, virtual, httpListener(t, "http", "127.0.0.1:0", "v1"))
	if a := g.m.Addr("virtual"); a != "" {
		t.Errorf("a bind_to_port false listener is bound on %s", a)
	}
	if _, e := get(t, plainClient(), "http://"+g.addr("http")+"/"); e.Version != "v1" {
		t.Errorf("got %q, want v1", e.Version)
	}
}
