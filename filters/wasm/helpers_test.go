package wasm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
	"github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/stats"
	"github.com/waygate/waygate/gateway/upstream"
)

// pluginConf is a Wasm filter config running test plugin name with the
// plugin configuration conf (a StringValue, as istiod sends it).
func pluginConf(t testing.TB, name, conf string, opts ...func(*wasmv3.PluginConfig)) *wasmfilterv3.Wasm {
	t.Helper()
	path, ok := pluginPath[name]
	if !ok {
		t.Fatalf("no test plugin %q", name)
	}
	a, err := anypb.New(wrapperspb.String(conf))
	if err != nil {
		t.Fatal(err)
	}
	pc := &wasmv3.PluginConfig{
		Name:          name,
		RootId:        name + "_root",
		Configuration: a,
		Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{
			VmId:    name + "_" + runName(t),
			Runtime: "envoy.wasm.runtime.v8",
			Code: &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{Local: &corev3.DataSource{
				Specifier: &corev3.DataSource_Filename{Filename: path},
			}}},
		}},
	}
	for _, o := range opts {
		o(pc)
	}
	return &wasmfilterv3.Wasm{Config: pc}
}

func failOpen(pc *wasmv3.PluginConfig) { pc.FailurePolicy = wasmv3.FailurePolicy_FAIL_OPEN }

// runName is t.Name(), told apart for each run of the same test in one
// process (go test -count=N). The host keeps shared data, queues and
// metrics by vm_id for the life of the process, as Envoy does, so the
// vm_ids the tests build from it must not carry state from one run into
// the next.
func runName(t testing.TB) string {
	if v, ok := runNames.Load(t); ok {
		return v.(string)
	}
	c, _ := runCounts.LoadOrStore(t.Name(), new(atomic.Int32))
	name := t.Name()
	if n := c.(*atomic.Int32).Add(1); n > 1 {
		name = fmt.Sprintf("%s#%d", name, n)
	}
	v, _ := runNames.LoadOrStore(t, name)
	return v.(string)
}

var (
	runNames  sync.Map // testing.TB -> its run's name
	runCounts sync.Map // test name -> *atomic.Int32, its runs so far
)

func vmID(id string) func(*wasmv3.PluginConfig) {
	return func(pc *wasmv3.PluginConfig) { pc.GetVmConfig().VmId = id }
}

// mode is an examples plugin configuration.
func mode(m string, kv ...string) string {
	c := map[string]any{"mode": m}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] = kv[i+1]
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// testLog is a logger writing to the test's output when -v asks for it.
func testLog(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// envForTest is the environment of a factory built outside a chain.
func envForTest(t testing.TB) filters.Env { return filters.Env{Log: testLog(t)} }

// testNode is the xDS node of the test gateways, with metadata and a
// locality as istio-agent fills them.
var testNode = &corev3.Node{
	Id:       "waygate-test",
	Cluster:  "waygate-gw.istio-system",
	Locality: &corev3.Locality{Region: "r1", Zone: "z1"},
	Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
		"NAMESPACE": structpb.NewStringValue("istio-system"),
		"REPLICAS":  structpb.NewNumberValue(2),
		"LABELS": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			"app": structpb.NewStringValue("gw"),
		}}),
	}},
}

// gateway is a connection manager serving a chain with Wasm filters on
// loopback, whose filters reach the clusters of its view for callouts.
type gateway struct {
	url   string
	store *stats.Store
	cfg   *hcm.Config
}

// viewUpstream sends a filter's callouts to a cluster of the view, as
// the gateway's cluster caller does with its snapshot.
type viewUpstream struct{ view *hcmtest.View }

func (u viewUpstream) RoundTrip(ctx context.Context, cluster string, req *http.Request) (*http.Response, error) {
	cl := u.view.Cluster(cluster)
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

// startGateway serves a chain of fs (the router appended) with two
// virtual hosts: "body" to cluster "body", *-canary to "canary", any
// other to "backend".
// Clusters are the given static ones.
func startGateway(t testing.TB, fs []*hcmv3.HttpFilter, clusters ...*clusterv3.Cluster) *gateway {
	t.Helper()
	rc := &routev3.RouteConfiguration{Name: "test", VirtualHosts: []*routev3.VirtualHost{
		{Name: "body", Domains: []string{"body"}, Routes: []*routev3.Route{hcmtest.Prefix("/", "body")}},
		{Name: "canary", Domains: []string{"*-canary"}, Routes: []*routev3.Route{hcmtest.Prefix("/", "canary")}},
		{Name: "all", Domains: []string{"*"}, Routes: []*routev3.Route{allRoute()}, Metadata: testVHostMetadata},
	}}
	view := &hcmtest.View{Tables: map[string]*router.Table{}}
	cs := map[string]*clusterv3.Cluster{}
	for _, cl := range clusters {
		cs[cl.GetName()] = cl
	}
	// The clusters exist before the plugins start: a plugin may call out
	// from its first tick.
	var err error
	if view.Clusters, err = upstream.NewManager().Build(cs, nil); err != nil {
		t.Fatal(err)
	}
	store := stats.NewStore()
	c := &hcm.Compiler{
		Env:   filters.Env{Log: testLog(t), Upstream: viewUpstream{view}, Node: testNode},
		Stats: store,
	}
	cfg, err := c.Compile(hcmtest.HCM(t, rc, fs...))
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	t.Cleanup(func() { c.Begin(); c.Sweep() })
	h := &hcm.Handler{Views: func() hcm.View { return view }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: h,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			info := filters.Connection{Listener: "test", ID: filters.NewConnectionID(),
				ListenerMetadata: testListenerMetadata, ListenerDirection: corev3.TrafficDirection_OUTBOUND}
			info.RemoteAddr, _ = netip.ParseAddrPort(c.RemoteAddr().String())
			info.LocalAddr, _ = netip.ParseAddrPort(c.LocalAddr().String())
			return hcm.WithConn(ctx, &hcm.Conn{Config: cfg, Info: info})
		},
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &gateway{url: "http://" + ln.Addr().String(), store: store, cfg: cfg}
}

// The static metadata of the test gateway's listener, "all" virtual
// host and its route, as a control plane would set it.
var (
	testListenerMetadata = metadataOf("team", map[string]any{"owner": "edge"})
	testVHostMetadata    = metadataOf("team", map[string]any{"owner": "books"})
	testRouteMetadata    = metadataOf("istio", map[string]any{"config": "/apis/networking.istio.io/v1/namespaces/default/virtual-service/all"})
)

// allRoute is the "all" virtual host's route, to cluster backend.
func allRoute() *routev3.Route {
	r := hcmtest.Prefix("/", "backend")
	r.Metadata = testRouteMetadata
	return r
}

// metadataOf is filter_metadata {ns: fields}.
func metadataOf(ns string, fields map[string]any) *corev3.Metadata {
	st, err := structpb.NewStruct(fields)
	if err != nil {
		panic(err)
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{ns: st}}
}

func wasmFilter(t testing.TB, cfg *wasmfilterv3.Wasm) *hcmv3.HttpFilter {
	return hcmtest.Filter(t, "envoy.filters.http.wasm", cfg)
}

// startEcho starts an echo backend.
func startEcho(t testing.TB, service string) *backend.Server {
	t.Helper()
	b, err := backend.Start(backend.Options{Service: service, Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// startBodyEcho starts a backend answering with the body it received.
func startBodyEcho(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Write(b)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// result is what a client saw of one exchange.
type result struct {
	status int
	header http.Header
	body   string
}

func (r result) echo(t testing.TB) backend.Echo {
	t.Helper()
	var e backend.Echo
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("status %d, body %q is not an echo: %v", r.status, r.body, err)
	}
	return e
}

var client = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}

// do sends one request; hdr holds name, value pairs ("host" sets Host).
func do(t testing.TB, method, url, body string, hdr ...string) result {
	t.Helper()
	r, err := try(method, url, body, hdr...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func try(method, url, body string, hdr ...string) (result, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return result{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return result{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, fmt.Errorf("%s %s: reading body: %w", method, url, err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

// eventually polls cond until it holds or the time is up.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
