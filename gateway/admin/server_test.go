package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/waygate/waygate/gateway/stats"
)

// calls records the process-level callbacks the admin server makes.
type calls struct {
	mu      sync.Mutex
	drains  []bool
	hc      []bool
	quitted chan struct{}
}

type harness struct {
	base  string
	src   *testSource
	calls *calls
	store *stats.Store
}

// start serves a Server on a real loopback listener.
func start(t *testing.T) *harness {
	t.Helper()
	h := &harness{src: &testSource{t: t}, calls: &calls{quitted: make(chan struct{}, 1)}, store: stats.NewStore()}
	srv := New(Options{
		Source: h.src,
		Stats:  h.store,
		Quit:   func() { h.calls.quitted <- struct{}{} },
		DrainListeners: func(graceful bool) {
			h.calls.mu.Lock()
			h.calls.drains = append(h.calls.drains, graceful)
			h.calls.mu.Unlock()
		},
		HealthCheckFail: func(failing bool) {
			h.calls.mu.Lock()
			h.calls.hc = append(h.calls.hc, failing)
			h.calls.mu.Unlock()
		},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	h.base = "http://" + ln.Addr().String()
	return h
}

func (h *harness) do(t *testing.T, method, path string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, h.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestReadyTransitions(t *testing.T) {
	h := start(t)
	steps := []struct {
		name         string
		method, path string
		ready        bool
		wantCode     int
		wantBody     string
	}{
		{"before first config", "GET", "/ready", false, 503, "PRE_INITIALIZING\n"},
		{"config applied", "GET", "/ready", true, 200, "LIVE\n"},
		{"fail health checks", "POST", "/healthcheck/fail", true, 200, "OK\n"},
		{"failing reads draining", "GET", "/ready", true, 503, "DRAINING\n"},
		{"pass health checks", "POST", "/healthcheck/ok", true, 200, "OK\n"},
		{"live again", "GET", "/ready", true, 200, "LIVE\n"},
		{"drain", "POST", "/drain_listeners?graceful&inboundonly", true, 200, "OK\n"},
		{"drained reads draining", "GET", "/ready", true, 503, "DRAINING\n"},
	}
	for _, st := range steps {
		h.src.ready.Store(st.ready)
		code, body, _ := h.do(t, st.method, st.path)
		if code != st.wantCode || body != st.wantBody {
			t.Errorf("%s: %s %s = %d %q, want %d %q", st.name, st.method, st.path, code, body, st.wantCode, st.wantBody)
		}
	}
	h.calls.mu.Lock()
	defer h.calls.mu.Unlock()
	if len(h.calls.hc) != 2 || !h.calls.hc[0] || h.calls.hc[1] {
		t.Errorf("HealthCheckFail calls = %v, want [true false]", h.calls.hc)
	}
	if len(h.calls.drains) != 1 || !h.calls.drains[0] {
		t.Errorf("DrainListeners calls = %v, want [true]", h.calls.drains)
	}
}

func TestPostOnly(t *testing.T) {
	h := start(t)
	for _, path := range []string{"/quitquitquit", "/drain_listeners", "/healthcheck/fail", "/healthcheck/ok"} {
		code, body, hdr := h.do(t, "GET", path)
		if code != http.StatusMethodNotAllowed || body != "This endpoint requires POST\n" || hdr.Get("Allow") != "POST" {
			t.Errorf("GET %s = %d %q, want 405 This endpoint requires POST", path, code, body)
		}
	}
	select {
	case <-h.calls.quitted:
		t.Fatal("GET /quitquitquit called Quit")
	default:
	}
	if code, body, _ := h.do(t, "POST", "/quitquitquit"); code != 200 || body != "OK\n" {
		t.Fatalf("POST /quitquitquit = %d %q", code, body)
	}
	select {
	case <-h.calls.quitted:
	case <-time.After(5 * time.Second):
		t.Fatal("POST /quitquitquit did not call Quit")
	}
}

func TestConfigDump(t *testing.T) {
	h := start(t)
	for _, tt := range []struct {
		path  string
		types []string
	}{
		{"/config_dump", []string{
			"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
			"type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
			"type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
			"type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
			"type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
		}},
		{"/config_dump?include_eds", []string{
			"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
			"type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
			"type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
			"type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
			"type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
			"type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
		}},
	} {
		code, body, hdr := h.do(t, "GET", tt.path)
		if code != 200 || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s = %d %s\n%s", tt.path, code, hdr.Get("Content-Type"), body)
		}
		// The shape istioctl reads: configs[i]["@type"], snake_case keys.
		var raw struct {
			Configs []map[string]json.RawMessage `json:"configs"`
		}
		if err := json.Unmarshal([]byte(body), &raw); err != nil {
			t.Fatal(err)
		}
		if len(raw.Configs) != len(tt.types) {
			t.Fatalf("GET %s: %d configs, want %d", tt.path, len(raw.Configs), len(tt.types))
		}
		for i, want := range tt.types {
			var got string
			json.Unmarshal(raw.Configs[i]["@type"], &got)
			if got != want {
				t.Errorf("GET %s: configs[%d] @type = %q, want %q", tt.path, i, got, want)
			}
		}
		if !strings.Contains(body, `"dynamic_active_clusters"`) || !strings.Contains(body, `"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"`) {
			t.Errorf("GET %s: nested Any types not resolved or not snake_case:\n%s", tt.path, body)
		}
		var dump adminv3.ConfigDump
		if err := protojson.Unmarshal([]byte(body), &dump); err != nil {
			t.Fatalf("GET %s does not parse back: %v", tt.path, err)
		}
		want := h.src.ConfigDump(strings.Contains(tt.path, "include_eds"))
		if !proto.Equal(&dump, want) {
			t.Errorf("GET %s round trip differs from the source's dump", tt.path)
		}
	}
}

func TestConfigDumpQueries(t *testing.T) {
	h := start(t)
	tests := []struct {
		name     string
		query    string
		wantCode int
		check    func(t *testing.T, d *adminv3.ConfigDump)
	}{
		{"resource", "resource=dynamic_active_clusters", 200, func(t *testing.T, d *adminv3.ConfigDump) {
			if len(d.Configs) != 2 || d.Configs[0].TypeUrl != "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster" {
				t.Errorf("configs = %v", d.Configs)
			}
		}},
		{"resource and name_regex", "resource=dynamic_active_clusters&name_regex=ratings", 200, func(t *testing.T, d *adminv3.ConfigDump) {
			if len(d.Configs) != 1 || clusterName(t, d.Configs[0]) != ratings {
				t.Errorf("configs = %v", d.Configs)
			}
		}},
		{"resource and mask into the cluster", "resource=dynamic_active_clusters&mask=cluster.name", 200, func(t *testing.T, d *adminv3.ConfigDump) {
			var dc adminv3.ClustersConfigDump_DynamicCluster
			if err := d.Configs[0].UnmarshalTo(&dc); err != nil {
				t.Fatal(err)
			}
			var c clusterv3.Cluster
			dc.Cluster.UnmarshalTo(&c)
			if dc.VersionInfo != "" || dc.LastUpdated != nil || c.Name != reviews || c.ConnectTimeout != nil {
				t.Errorf("masked cluster = %v / %v", &dc, &c)
			}
		}},
		{"mask on every dump", "mask=version_info", 200, func(t *testing.T, d *adminv3.ConfigDump) {
			var cd adminv3.ClustersConfigDump
			if len(d.Configs) != 5 || d.Configs[2].UnmarshalTo(&cd) != nil || cd.VersionInfo != "v1" || len(cd.DynamicActiveClusters) != 0 {
				t.Errorf("masked dump = %v", d)
			}
		}},
		{"name_regex on every dump", "name_regex=^outbound.*reviews", 200, func(t *testing.T, d *adminv3.ConfigDump) {
			var cd adminv3.ClustersConfigDump
			var ld adminv3.ListenersConfigDump
			d.Configs[2].UnmarshalTo(&cd)
			d.Configs[1].UnmarshalTo(&ld)
			if len(cd.DynamicActiveClusters) != 1 || len(ld.DynamicListeners) != 0 {
				t.Errorf("filtered dump = %v", d)
			}
		}},
		{"endpoints by cluster_name", "include_eds&resource=dynamic_endpoint_configs&name_regex=reviews", 200, func(t *testing.T, d *adminv3.ConfigDump) {
			if len(d.Configs) != 1 {
				t.Errorf("configs = %v", d.Configs)
			}
		}},
		{"unknown resource", "resource=nonsense", 404, nil},
		{"bad regex", "name_regex=(", 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := h.do(t, "GET", "/config_dump?"+tt.query)
			if code != tt.wantCode {
				t.Fatalf("code = %d, want %d\n%s", code, tt.wantCode, body)
			}
			if tt.check == nil {
				return
			}
			var d adminv3.ConfigDump
			if err := protojson.Unmarshal([]byte(body), &d); err != nil {
				t.Fatalf("%v\n%s", err, body)
			}
			tt.check(t, &d)
		})
	}
}

func clusterName(t *testing.T, a interface {
	UnmarshalTo(proto.Message) error
}) string {
	var dc adminv3.ClustersConfigDump_DynamicCluster
	if err := a.UnmarshalTo(&dc); err != nil {
		t.Fatal(err)
	}
	var c clusterv3.Cluster
	if err := dc.Cluster.UnmarshalTo(&c); err != nil {
		t.Fatal(err)
	}
	return c.Name
}

func TestClustersAndListeners(t *testing.T) {
	h := start(t)
	_, body, _ := h.do(t, "GET", "/clusters")
	want := strings.ReplaceAll(`C::observability_name::C
C::default_priority::max_connections::1
C::default_priority::max_pending_requests::1
C::default_priority::max_requests::1024
C::default_priority::max_retries::3
C::high_priority::max_connections::1024
C::high_priority::max_pending_requests::1024
C::high_priority::max_requests::1024
C::high_priority::max_retries::3
C::added_via_api::true
C::eds_service_name::C
C::10.1.0.5:9080::cx_active::1
C::10.1.0.5:9080::rq_total::12
C::10.1.0.5:9080::hostname::
C::10.1.0.5:9080::health_flags::healthy
C::10.1.0.5:9080::weight::1
C::10.1.0.5:9080::region::eu
C::10.1.0.5:9080::zone::eu-1
C::10.1.0.5:9080::sub_zone::
C::10.1.0.5:9080::canary::false
C::10.1.0.5:9080::priority::0
C::10.1.0.5:9080::success_rate::99.5
C::10.1.0.5:9080::local_origin_success_rate::-1
C::[fd00::7]:9080::hostname::
C::[fd00::7]:9080::health_flags::/failed_outlier_check/failed_eds_health
C::[fd00::7]:9080::weight::2
C::[fd00::7]:9080::region::
C::[fd00::7]:9080::zone::
C::[fd00::7]:9080::sub_zone::
C::[fd00::7]:9080::canary::false
C::[fd00::7]:9080::priority::1
C::[fd00::7]:9080::success_rate::-1
C::[fd00::7]:9080::local_origin_success_rate::-1
`, "C", reviews)
	if body != want {
		t.Errorf("/clusters:\n%s\nwant:\n%s", body, want)
	}

	_, body, _ = h.do(t, "GET", "/clusters?format=json")
	var cs adminv3.Clusters
	if err := protojson.Unmarshal([]byte(body), &cs); err != nil || !proto.Equal(&cs, h.src.Clusters()) {
		t.Errorf("/clusters?format=json = %v, %v", &cs, err)
	}

	_, body, _ = h.do(t, "GET", "/listeners")
	if body != "0.0.0.0_8080::0.0.0.0:8080\n0.0.0.0_8443::0.0.0.0:8443\n" {
		t.Errorf("/listeners = %q", body)
	}
	_, body, _ = h.do(t, "GET", "/listeners?format=json")
	var ls adminv3.Listeners
	if err := protojson.Unmarshal([]byte(body), &ls); err != nil || !proto.Equal(&ls, h.src.Listeners()) {
		t.Errorf("/listeners?format=json = %v, %v", &ls, err)
	}
}

func TestStatsEndpoints(t *testing.T) {
	h := start(t)
	h.store.Scope("cluster."+reviews+".", stats.Tag{Name: stats.TagClusterName, Value: reviews}).Counter("upstream_rq_total").Add(3)
	h.store.Scope("http.outbound_0.0.0.0_8080.", stats.Tag{Name: stats.TagHTTPConnManagerPrefix, Value: "outbound_0.0.0.0_8080"}).Counter("downstream_rq_2xx").Add(2)
	h.store.Scope("listener.0.0.0.0_8080.", stats.Tag{Name: stats.TagListenerAddress, Value: "0.0.0.0_8080"}).Counter("downstream_cx_total").Inc()

	_, body, _ := h.do(t, "GET", "/stats")
	if !strings.Contains(body, "cluster."+reviews+".upstream_rq_total: 3\n") {
		t.Errorf("/stats:\n%s", body)
	}
	_, body, _ = h.do(t, "GET", "/stats?filter=downstream_cx")
	if body != "listener.0.0.0.0_8080.downstream_cx_total: 1\n" {
		t.Errorf("/stats?filter = %q", body)
	}
	if code, _, _ := h.do(t, "GET", "/stats?filter=("); code != 400 {
		t.Errorf("/stats with a bad regex = %d, want 400", code)
	}
	_, body, _ = h.do(t, "GET", "/stats?format=json&filter=^http")
	var js struct {
		Stats []struct {
			Name  string `json:"name"`
			Value int    `json:"value"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(body), &js); err != nil || len(js.Stats) != 1 || js.Stats[0].Value != 2 {
		t.Errorf("/stats?format=json = %s (%v)", body, err)
	}

	for _, path := range []string{"/stats/prometheus", "/stats?format=prometheus"} {
		_, body, hdr := h.do(t, "GET", path)
		if !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
			t.Errorf("%s Content-Type = %q", path, hdr.Get("Content-Type"))
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for family, labels := range map[string]map[string]string{
			"envoy_cluster_upstream_rq_total":    {"envoy_cluster_name": reviews},
			"envoy_http_downstream_rq_xx":        {"envoy_response_code_class": "2", "envoy_http_conn_manager_prefix": "outbound_0.0.0.0_8080"},
			"envoy_listener_downstream_cx_total": {"envoy_listener_address": "0.0.0.0_8080"},
			"go_goroutines":                      {},
			"process_resident_memory_bytes":      {},
		} {
			mf := mfs[family]
			if mf == nil || len(mf.Metric) != 1 {
				t.Errorf("%s: family %s missing", path, family)
				continue
			}
			got := map[string]string{}
			for _, l := range mf.Metric[0].Label {
				got[l.GetName()] = l.GetValue()
			}
			if len(got) != len(labels) {
				t.Errorf("%s: %s labels = %v, want %v", path, family, got, labels)
			}
			for k, v := range labels {
				if got[k] != v {
					t.Errorf("%s: %s labels = %v, want %v", path, family, got, labels)
				}
			}
		}
	}
}

func TestInfoEndpoints(t *testing.T) {
	h := start(t)
	h.src.ready.Store(true)
	_, body, _ := h.do(t, "GET", "/server_info")
	var info adminv3.ServerInfo
	if err := protojson.Unmarshal([]byte(body), &info); err != nil || info.State != adminv3.ServerInfo_LIVE || info.Version != "waygate/test" {
		t.Errorf("/server_info = %v (%v)", &info, err)
	}
	h.do(t, "POST", "/healthcheck/fail")
	_, body, _ = h.do(t, "GET", "/server_info")
	protojson.Unmarshal([]byte(body), &info)
	if info.State != adminv3.ServerInfo_DRAINING {
		t.Errorf("/server_info state after healthcheck/fail = %v, want DRAINING", info.State)
	}

	_, body, _ = h.do(t, "GET", "/memory")
	var mem adminv3.Memory
	if err := protojson.Unmarshal([]byte(body), &mem); err != nil || mem.Allocated == 0 || mem.HeapSize < mem.Allocated {
		t.Errorf("/memory = %s (%v)", body, err)
	}
	_, body, _ = h.do(t, "GET", "/runtime")
	var rt struct {
		Layers  []string       `json:"layers"`
		Entries map[string]any `json:"entries"`
	}
	if err := json.Unmarshal([]byte(body), &rt); err != nil || rt.Layers == nil || rt.Entries == nil {
		t.Errorf("/runtime = %s (%v)", body, err)
	}
	code, body, _ := h.do(t, "GET", "/help")
	for _, ep := range []string{"/config_dump", "/clusters", "/stats/prometheus", "/quitquitquit (POST)", "/debug/pprof/"} {
		if code != 200 || !strings.Contains(body, "  "+ep) {
			t.Errorf("/help lacks %s:\n%s", ep, body)
		}
	}
	if code, body, _ := h.do(t, "GET", "/nonsense"); code != 404 || !strings.HasPrefix(body, "invalid path. admin commands are:") {
		t.Errorf("/nonsense = %d %q", code, body)
	}
}

func TestProfiles(t *testing.T) {
	h := start(t)
	for _, path := range []string{"/debug/pprof/heap", "/debug/pprof/profile?seconds=1", "/debug/pprof/goroutine?debug=1"} {
		code, body, _ := h.do(t, "GET", path)
		if code != 200 || len(body) == 0 {
			t.Errorf("GET %s = %d, %d bytes", path, code, len(body))
		}
	}
}

func TestListenAndServeStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv := New(Options{Source: &testSource{t: t}, Stats: stats.NewStore()})
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx, "127.0.0.1:0") }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ListenAndServe did not return after cancel")
	}
	if err := New(Options{}).ListenAndServe(context.Background(), "256.0.0.1:1"); err == nil {
		t.Fatal("ListenAndServe on a bad address succeeded")
	}
}

func TestServerStateStats(t *testing.T) {
	h := start(t)
	const q = `/stats?usedonly&filter=^server\.(state|live)$`
	for _, st := range []struct {
		ready      bool
		post, want string
	}{
		{false, "", "server.live: 1\nserver.state: 2\n"},
		{true, "", "server.live: 1\nserver.state: 0\n"},
		{true, "/healthcheck/fail", "server.live: 0\nserver.state: 1\n"},
	} {
		h.src.ready.Store(st.ready)
		if st.post != "" {
			h.do(t, "POST", st.post)
		}
		if _, body, _ := h.do(t, "GET", q); body != st.want {
			t.Errorf("ready=%v after %q: %s = %q, want %q", st.ready, st.post, q, body, st.want)
		}
	}
}

func TestLogging(t *testing.T) {
	h := start(t)
	if code, _, _ := h.do(t, "POST", "/logging"); code != http.StatusNotImplemented {
		t.Errorf("/logging without a level var = %d, want 501", code)
	}

	lv := new(slog.LevelVar)
	srv := New(Options{Source: &testSource{t: t}, LogLevel: lv})
	tests := []struct {
		query    string
		wantCode int
		wantBody string
		want     slog.Level
	}{
		{"", 200, "active loggers:\n  waygate: info\n", slog.LevelInfo},
		{"?level=debug", 200, "active loggers:\n  waygate: debug\n", slog.LevelDebug},
		{"?waygate=trace", 200, "active loggers:\n  waygate: trace\n", slog.LevelDebug - 4},
		{"?paths=waygate:warning", 200, "active loggers:\n  waygate: warning\n", slog.LevelWarn},
		{"?level=loud", 404, "error: unknown level loud\n", slog.LevelWarn},
		{"?http=debug", 404, "error: unknown logger name http\n", slog.LevelWarn},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("POST", "/logging"+tt.query, nil))
		if rec.Code != tt.wantCode || !strings.HasPrefix(rec.Body.String(), tt.wantBody) || lv.Level() != tt.want {
			t.Errorf("POST /logging%s = %d %q level %v, want %d %q level %v", tt.query, rec.Code, rec.Body.String(), lv.Level(), tt.wantCode, tt.wantBody, tt.want)
		}
	}
}
