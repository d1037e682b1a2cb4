package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	netwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/wasm/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
	"github.com/waygate/waygate/gateway/listener"
	"github.com/waygate/waygate/gateway/snapshot"
	"github.com/waygate/waygate/gateway/stats"
	"github.com/waygate/waygate/gateway/upstream"
)

func init() {
	testPlugins = append(testPlugins, struct {
		name, dir string
		reactor   bool
	}{"network", "network", true})
}

var gatewaySeq atomic.Int64

// tcpGateway is a data plane serving one listener whose chain runs a
// network Wasm filter before a tcp_proxy to a loopback echo backend.
type tcpGateway struct {
	addr    string
	backend string // the echo backend's address
	store   *stats.Store
	logs    *logBuffer
}

// startTCPGateway serves the test plugin "network" with configuration
// words conf (see testdata/network) through a real listener.
func startTCPGateway(t testing.TB, conf string, opts ...func(*wasmv3.PluginConfig)) *tcpGateway {
	t.Helper()
	// The machine may be busy: only the crashes the tests cause should
	// kill an instance, never a slow call.
	t.Setenv(EnvCallTimeout, "5s")
	// Metrics live by vm_id for the life of the process, in the store
	// of the gateway that defined them first: each gateway gets its own.
	opts = append([]func(*wasmv3.PluginConfig){vmID(fmt.Sprintf("network-%d", gatewaySeq.Add(1)))}, opts...)
	return startTCPProxy(t, networkFilter(t, networkConf(t, conf, opts...)))
}

// startTCPProxy serves the network filters fs, then a tcp_proxy to a
// loopback echo backend, through a real listener.
func startTCPProxy(t testing.TB, fs ...*listenerv3.Filter) *tcpGateway {
	t.Helper()
	return startChain(t, startTCPEcho(t), append(fs,
		&listenerv3.Filter{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAnyT(t, &tcpv3.TcpProxy{
			StatPrefix: "tcp", ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: "echo"},
		})}},
	)...)
}

// startChain serves a listener whose chain is fs, with cluster "echo"
// at backend.
func startChain(t testing.TB, backend string, fs ...*listenerv3.Filter) *tcpGateway {
	t.Helper()
	return startChainWith(t, map[string]string{"echo": backend}, fs...)
}

// startChainWith serves a listener whose chain is fs, with clusters by
// name at their addresses; "echo" is the backend.
func startChainWith(t testing.TB, clusters map[string]string, fs ...*listenerv3.Filter) *tcpGateway {
	t.Helper()
	g := &tcpGateway{store: stats.NewStore(), logs: &logBuffer{}, backend: clusters["echo"]}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(g.logs, testLogWriter()), &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := &snapshot.Builder{HCM: &hcm.Compiler{Env: filters.Env{Log: log}, Stats: g.store}, Upstream: upstream.NewManager(), Log: log}
	// Plugins call clusters through the gateway's own upstreams.
	b.HCM.Env.Upstream = snapshotUpstream{b}
	m := &listener.Manager{Views: b.View, Handler: &hcm.Handler{Views: b.View}, DrainTimeout: time.Second, Log: log}
	b.Listeners = m
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Drain(ctx)
		// Releases the plugin's instances.
		b.HCM.Begin()
		b.HCM.Sweep()
	})
	apply := func(typeURL string, name string, msg proto.Message) {
		t.Helper()
		a, err := anypb.New(msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Apply(typeURL, map[string]*anypb.Any{name: a}); err != nil {
			t.Fatalf("apply %s: %v", typeURL, err)
		}
	}
	cs := map[string]*anypb.Any{}
	for name, addr := range clusters {
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		cs[name] = mustAnyT(t, &clusterv3.Cluster{
			Name:                 name,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
			ConnectTimeout:       durationpb.New(time.Second),
			LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
				LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
						Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(p)},
					}}},
				}}}},
			}}},
		})
	}
	if err := b.Apply(resourcev3.ClusterType, cs); err != nil {
		t.Fatalf("apply clusters: %v", err)
	}
	apply(resourcev3.ListenerType, "tcp", &listenerv3.Listener{
		Name: "tcp",
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 0},
		}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: fs}},
	})
	g.addr = m.Addr("tcp")
	return g
}

// snapshotUpstream sends a plugin's http calls to a cluster of the
// builder's current snapshot, as the gateway's cluster caller does.
type snapshotUpstream struct{ b *snapshot.Builder }

func (u snapshotUpstream) RoundTrip(ctx context.Context, cluster string, req *http.Request) (*http.Response, error) {
	cl := u.b.Current().Cluster(cluster)
	if cl == nil {
		return nil, fmt.Errorf("cluster %q not found", cluster)
	}
	ep, err := cl.Pick(upstream.PickContext{})
	if err != nil {
		return nil, err
	}
	r := req.Clone(ctx)
	r.URL.Scheme, r.URL.Host = "http", ep.Address
	return cl.RoundTrip(ep, r, false)
}

// networkConf is a network Wasm filter config running the test plugin
// "network" with configuration conf.
func networkConf(t testing.TB, conf string, opts ...func(*wasmv3.PluginConfig)) *netwasmv3.Wasm {
	return &netwasmv3.Wasm{Config: pluginConf(t, "network", conf, opts...).GetConfig()}
}

func networkFilter(t testing.TB, cfg *netwasmv3.Wasm) *listenerv3.Filter {
	return &listenerv3.Filter{Name: "envoy.filters.network.wasm", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAnyT(t, cfg)}}
}

func mustAnyT(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// poolSize runs the registered builder's plugins with n instances.
func poolSize(t *testing.T, n int) { t.Setenv(EnvPoolSize, strconv.Itoa(n)) }

// startTCPEcho starts a backend writing back every byte it reads, and
// closing when its client does.
func startTCPEcho(t testing.TB) string {
	t.Helper()
	s, err := backend.StartByteEcho("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Addr()
}

// logBuffer collects log lines from every goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits for the logs to hold s.
func (l *logBuffer) waitFor(t testing.TB, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(l.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the logs never held %q:\n%s", s, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testLogWriter() io.Writer {
	if testing.Verbose() {
		return testStderr{}
	}
	return io.Discard
}

type testStderr struct{}

func (testStderr) Write(p []byte) (int, error) { return fmt.Print(string(p)) }

// tcpClient is one connection to the gateway.
type tcpClient struct {
	t *testing.T
	c net.Conn
}

func dialTCP(t *testing.T, addr string) *tcpClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tcpClient{t: t, c: c}
}

// roundTrip writes s and reads len(want) bytes back.
func (c *tcpClient) roundTrip(s string, n int) (string, error) {
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.c, s); err != nil {
		return "", err
	}
	b := make([]byte, n)
	k, err := io.ReadFull(c.c, b)
	return string(b[:k]), err
}

// expect writes s and fails unless want comes back.
func (c *tcpClient) expect(s, want string) {
	c.t.Helper()
	got, err := c.roundTrip(s, len(want))
	if err != nil || got != want {
		c.t.Fatalf("sent %q: got %q, %v; want %q", s, got, err, want)
	}
}

// closed reports whether the gateway closed the connection: a read
// ends with EOF or a reset before the deadline.
func (c *tcpClient) closed() bool {
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c.c)
	var ne net.Error
	return len(b) == 0 && !(errors.As(err, &ne) && ne.Timeout())
}

func TestNetworkPluginRewritesBothWays(t *testing.T) {
	g := startTCPGateway(t, "upper rot13")
	c := dialTCP(t, g.addr)
	// Upper-cased going up, rotated coming back.
	c.expect("hello", "URYYB")
	c.expect("Gateway 42\n", "TNGRJNL 42\n")
	if got := g.store.Counter("wasmcustom.tcp_downstream_bytes").Value(); got != 16 {
		t.Errorf("tcp_downstream_bytes %d, want 16", got)
	}
	if got := g.store.Counter("wasmcustom.tcp_upstream_bytes").Value(); got != 16 {
		t.Errorf("tcp_upstream_bytes %d, want 16", got)
	}
	var text bytes.Buffer
	g.store.WriteText(&text, nil)
	if !strings.Contains(text.String(), "wasmcustom.tcp_downstream_bytes: 16") {
		t.Errorf("stats lack the plugin's counter:\n%s", text.String())
	}
	// A half-close reaches the backend, whose close comes back.
	c.c.(*net.TCPConn).CloseWrite()
	if rest, err := io.ReadAll(c.c); len(rest) != 0 || err != nil {
		t.Errorf("after half-close read %q, %v", rest, err)
	}
	g.logs.waitFor(t, "downstream closed by remote")
	g.logs.waitFor(t, "upstream closed by remote")
	g.logs.waitFor(t, "done: 16 bytes down, 16 bytes up")
}

func TestNetworkPluginHoldsUntilLine(t *testing.T) {
	g := startTCPGateway(t, "upper line")
	c := dialTCP(t, g.addr)
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c.c, "abc")
	// Nothing comes back while the plugin holds the data.
	c.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _ := c.c.Read(make([]byte, 8)); n != 0 {
		t.Fatalf("got %d bytes before the line ended", n)
	}
	c.expect("def\n", "ABCDEF\n")
}

func TestNetworkPluginContinuesFromTick(t *testing.T) {
	g := startTCPGateway(t, "upper")
	// Timed from before the dial: the gateway may accept, and start
	// holding, before the dial returns here.
	start := time.Now()
	c := dialTCP(t, g.addr)
	// Held, then let go as it was by proxy_continue_stream from the
	// root context's tick, after proxy_set_effective_context.
	c.expect("HOLD on", "HOLD on")
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("answered after %v, before the tick", d)
	}
	c.expect("next", "NEXT")
}

func TestNetworkPluginHoldsNewConnection(t *testing.T) {
	g := startTCPGateway(t, "upper gate")
	// Timed from before the dial: the gateway may accept, and start
	// holding, before the dial returns here.
	start := time.Now()
	c := dialTCP(t, g.addr)
	// The upstream is connected once the tick continues the
	// connection; the data waits for it.
	c.expect("open", "OPEN")
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("answered after %v, before the tick", d)
	}
	c.expect("then", "THEN")
}

// A plugin holds each new connection until an http call to an auth
// service answers, then lets it go on or closes it.
func TestNetworkPluginAuthorizesByHTTPCall(t *testing.T) {
	auth := startEcho(t, "auth")
	for _, tt := range []struct {
		path  string
		allow bool
	}{{"/check", true}, {"/check?status=403", false}} {
		t.Run(tt.path, func(t *testing.T) {
			t.Setenv(EnvCallTimeout, "5s")
			plugin := networkFilter(t, networkConf(t, "upper auth="+tt.path, vmID(fmt.Sprintf("network-%d", gatewaySeq.Add(1)))))
			g := startChainWith(t, map[string]string{"echo": startTCPEcho(t), "auth": auth.Addr()}, plugin,
				&listenerv3.Filter{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAnyT(t, &tcpv3.TcpProxy{
					StatPrefix: "tcp", ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: "echo"},
				})}})
			c := dialTCP(t, g.addr)
			if tt.allow {
				c.expect("let me in", "LET ME IN")
				return
			}
			io.WriteString(c.c, "let me in")
			if !c.closed() {
				t.Fatal("the connection the auth service refused stayed open")
			}
			g.logs.waitFor(t, "refused: auth answered 403")
		})
	}
}

func TestNetworkPluginClosesOnMarker(t *testing.T) {
	g := startTCPGateway(t, "upper")
	c := dialTCP(t, g.addr)
	c.expect("first", "FIRST")
	io.WriteString(c.c, "please QUIT")
	if !c.closed() {
		t.Fatal("the connection stayed open after QUIT")
	}
	g.logs.waitFor(t, "downstream closed by local")
	// Other connections carry on.
	dialTCP(t, g.addr).expect("again", "AGAIN")
}

func TestNetworkPluginProperties(t *testing.T) {
	g := startTCPGateway(t, "")
	c := dialTCP(t, g.addr)
	reply, err := c.roundTrip("WHO", 1)
	if err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, 256)
	n, _ := c.c.Read(rest)
	line := reply + string(rest[:n])
	for _, want := range []string{
		"src=" + c.c.LocalAddr().String(),
		"dst=" + c.c.RemoteAddr().String(),
		"up=" + g.backend,
		"cluster=echo",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("properties %q lack %q", line, want)
		}
	}
	if strings.Contains(line, "id=0") {
		t.Errorf("properties %q have no connection.id", line)
	}
	g.logs.waitFor(t, "new connection")
	g.logs.waitFor(t, "from "+c.c.LocalAddr().String()+" to "+c.c.RemoteAddr().String())
	g.logs.waitFor(t, "upstream "+g.backend+" in cluster echo")
}

// TestNetworkPluginCrash crashes the plugin on one of many concurrent
// connections. With FAIL_CLOSE the connections whose context died
// with the instance close, and with FAIL_OPEN they go on without the
// plugin; the other instance's connections keep their plugin, new
// connections get a fresh instance, and the process carries on.
func TestNetworkPluginCrash(t *testing.T) {
	for _, tt := range []struct {
		name     string
		failOpen bool
	}{{"fail close", false}, {"fail open", true}} {
		t.Run(tt.name, func(t *testing.T) {
			poolSize(t, 2)
			var opts []func(*wasmv3.PluginConfig)
			if tt.failOpen {
				opts = append(opts, failOpen)
			}
			g := startTCPGateway(t, "upper", opts...)
			const n = 8
			conns := make([]*tcpClient, n)
			var wg sync.WaitGroup
			for i := range conns {
				conns[i] = dialTCP(t, g.addr)
				wg.Add(1)
				go func() {
					defer wg.Done()
					if got, err := conns[i].roundTrip("before", 6); got != "BEFORE" {
						t.Errorf("connection %d: %q, %v", i, got, err)
					}
				}()
			}
			wg.Wait()

			crashed := conns[0]
			if tt.failOpen {
				// The data that crashed the plugin goes on as it was.
				crashed.expect("CRASH", "CRASH")
				crashed.expect("after", "after")
			} else {
				io.WriteString(crashed.c, "CRASH")
				if !crashed.closed() {
					t.Fatal("the crashing connection stayed open")
				}
			}

			// The others, at once: their contexts lived in either the
			// dead instance or the live one.
			results := make([]string, n)
			for i := 1; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := conns[i].roundTrip("later", 5)
					switch {
					case got == "LATER":
						results[i] = "plugin"
					case got == "later" && tt.failOpen:
						results[i] = "without plugin"
					case got == "" && err != nil && !tt.failOpen:
						results[i] = "closed"
					default:
						t.Errorf("connection %d: %q, %v", i, got, err)
					}
				}()
			}
			wg.Wait()
			counts := map[string]int{}
			for _, r := range results[1:] {
				counts[r]++
			}
			if counts["plugin"] == 0 {
				t.Errorf("no connection kept the plugin: %v", counts)
			}
			fresh := dialTCP(t, g.addr)
			fresh.expect("fresh", "FRESH")
			g.logs.waitFor(t, "wasm plugin instance failed")
			if got := g.store.Counter("wasm.network.vm_failures").Value(); got != 1 {
				t.Errorf("vm_failures %d, want 1", got)
			}
			t.Logf("after the crash: %v", counts)
		})
	}
}

// A network plugin before an HTTP connection manager sees the bytes of
// plaintext HTTP: upper-casing them changes the path the backend sees,
// its counters count both ways, and a crash closes the connection.
func TestNetworkPluginBeforeHTTP(t *testing.T) {
	be := startEcho(t, "web")
	hcmFilter := &listenerv3.Filter{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{
		TypedConfig: mustAnyT(t, hcmtest.HCM(t, hcmtest.Routes(hcmtest.Prefix("/", "echo")))),
	}}
	t.Setenv(EnvCallTimeout, "5s")
	plugin := networkFilter(t, networkConf(t, "upper", vmID(fmt.Sprintf("network-%d", gatewaySeq.Add(1)))))
	g := startChain(t, be.Addr(), plugin, hcmFilter)
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + g.addr + "/some/path")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e backend.Echo
	if err := json.Unmarshal(body, &e); err != nil || e.Path != "/SOME/PATH" {
		t.Errorf("backend saw path %q (%v), want it upper-cased", e.Path, err)
	}
	down := g.store.Counter("wasmcustom.tcp_downstream_bytes").Value()
	up := g.store.Counter("wasmcustom.tcp_upstream_bytes").Value()
	if down < 30 || up < uint64(len(body)) {
		t.Errorf("counted %d bytes down and %d up, want the request's and the response's", down, up)
	}
	req, _ := http.NewRequest("GET", "http://"+g.addr+"/", nil)
	req.Header.Set("X-Test", "CRASH")
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("the request crashing the plugin got %d, want its connection closed", resp.StatusCode)
	}
	c.CloseIdleConnections()
	if resp, err := c.Get("http://" + g.addr + "/after"); err != nil {
		t.Errorf("after the crash: %v", err)
	} else {
		resp.Body.Close()
	}
}

func TestNetworkPluginBadConfigRefused(t *testing.T) {
	_, err := buildNetwork(networkConf(t, "sideways"), filters.Env{Log: testLog(t)})
	if err == nil || !strings.Contains(err.Error(), `unknown word "sideways"`) {
		t.Fatalf("error %v, want the plugin's reason", err)
	}
}
