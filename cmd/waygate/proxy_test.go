package main

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// routingFixture is the xDS of the routing tests: one listener, one
// route configuration, three clusters with a backend each.
type routingFixture struct {
	port    int
	a, b, c string // backend addresses
}

func (f routingFixture) resources(routes []*routev3.Route) map[resourcev3.Type][]types.Resource {
	rc := &routev3.RouteConfiguration{
		Name: "http.test",
		VirtualHosts: []*routev3.VirtualHost{
			{
				Name:    "other",
				Domains: []string{"other.example.com"},
				Routes:  []*routev3.Route{{Match: prefix("/"), Action: toCluster("c")}},
			},
			{Name: "default", Domains: []string{"*"}, Routes: routes},
		},
	}
	return map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {httpListener("test", f.port, "http.test")},
		resourcev3.RouteType:    {rc},
		resourcev3.ClusterType:  {edsCluster("a"), edsCluster("b"), edsCluster("c"), edsCluster("empty")},
		resourcev3.EndpointType: {assignment("a", f.a), assignment("b", f.b), assignment("c", f.c), assignment("empty")},
	}
}

// routes are the first config's routes, one per behavior under test.
func baseRoutes() []*routev3.Route {
	return []*routev3.Route{
		{
			Match: &routev3.RouteMatch{
				PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/hdr"},
				Headers: []*routev3.HeaderMatcher{{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
					StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "jason"}}}}},
			},
			Action: toCluster("b"),
		},
		{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/exact"}}, Action: toCluster("b")},
		{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/re/[0-9]+"}}}, Action: toCluster("c")},
		{
			Match: prefix("/rewrite/"),
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{
				ClusterSpecifier:     &routev3.RouteAction_Cluster{Cluster: "a"},
				PrefixRewrite:        "/v2/",
				HostRewriteSpecifier: &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: "rewritten.internal"},
			}},
		},
		{
			Match: prefix("/regex-rewrite/"),
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{
				ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "a"},
				RegexRewrite: &matcherv3.RegexMatchAndSubstitute{
					Pattern:      &matcherv3.RegexMatcher{Regex: "^/regex-rewrite/([a-z]+)/([0-9]+)$"},
					Substitution: "/\\2/\\1",
				},
			}},
		},
		{
			Match:  prefix("/old"),
			Action: &routev3.Route_Redirect{Redirect: &routev3.RedirectAction{PathRewriteSpecifier: &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: "/new"}, ResponseCode: routev3.RedirectAction_FOUND}},
		},
		{
			Match: prefix("/direct"),
			Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 418,
				Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "short and stout"}}}},
		},
		{
			Match:  prefix("/headers"),
			Action: toCluster("a"),
			RequestHeadersToAdd: []*corev3.HeaderValueOption{
				{Header: &corev3.HeaderValue{Key: "x-added", Value: "yes"}},
				{Header: &corev3.HeaderValue{Key: "x-client", Value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}},
			},
			RequestHeadersToRemove:  []string{"x-secret"},
			ResponseHeadersToAdd:    []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-resp", Value: "added"}}},
			ResponseHeadersToRemove: []string{"x-version"},
		},
		{
			Match: prefix("/slow"),
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{
				ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "a"},
				Timeout:          durationpb.New(300 * time.Millisecond),
			}},
		},
		{Match: prefix("/nobody"), Action: toCluster("empty")},
		{Match: prefix("/missing-cluster"), Action: toCluster("nope")},
		{Match: prefix("/"), Action: toCluster("a")},
	}
}

func TestProxyRouting(t *testing.T) {
	a, b, c := startBackend(t, "a", "v1"), startBackend(t, "b", "v1"), startBackend(t, "c", "v1")
	fx := routingFixture{port: freePort(t), a: a.Addr(), b: b.Addr(), c: c.Addr()}
	xds := startXDS(t)
	xds.push(t, "node-1", "1", fx.resources(baseRoutes()))
	p := startProxy(t, xds.addr, "node-1")
	p.waitReady(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", fx.port)
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for _, tc := range []struct {
		name    string
		path    string
		hdr     map[string]string
		status  int
		service string // backend expected to answer
		check   func(t *testing.T, resp *http.Response, body []byte)
	}{
		{name: "prefix catch-all", path: "/anything", status: 200, service: "a"},
		{name: "header match", path: "/hdr", hdr: map[string]string{"end-user": "jason"}, status: 200, service: "b"},
		{name: "header mismatch falls through", path: "/hdr", hdr: map[string]string{"end-user": "bob"}, status: 200, service: "a"},
		{name: "exact path", path: "/exact", status: 200, service: "b"},
		{name: "exact path is not a prefix", path: "/exact/more", status: 200, service: "a"},
		{name: "regex", path: "/re/42", status: 200, service: "c"},
		{name: "virtual host by authority", path: "/exact", hdr: map[string]string{"Host": "other.example.com"}, status: 200, service: "c"},
		{name: "prefix and host rewrite", path: "/rewrite/items?q=1", status: 200, service: "a", check: func(t *testing.T, _ *http.Response, body []byte) {
			e := decodeEcho(t, body)
			if e.Path != "/v2/items" || e.Query != "q=1" || e.Host != "rewritten.internal" {
				t.Errorf("upstream saw path %q query %q host %q", e.Path, e.Query, e.Host)
			}
			if e.Headers["x-envoy-original-path"] != "/rewrite/items?q=1" {
				t.Errorf("x-envoy-original-path = %q", e.Headers["x-envoy-original-path"])
			}
		}},
		{name: "regex rewrite", path: "/regex-rewrite/abc/123", status: 200, service: "a", check: func(t *testing.T, _ *http.Response, body []byte) {
			if e := decodeEcho(t, body); e.Path != "/123/abc" {
				t.Errorf("upstream saw path %q", e.Path)
			}
		}},
		{name: "redirect", path: "/old/page?x=1", status: 302, check: func(t *testing.T, resp *http.Response, _ []byte) {
			if got := resp.Header.Get("Location"); !strings.HasSuffix(got, "/new/page?x=1") {
				t.Errorf("Location = %q", got)
			}
		}},
		{name: "direct response", path: "/direct", status: 418, check: func(t *testing.T, _ *http.Response, body []byte) {
			if string(body) != "short and stout" {
				t.Errorf("body = %q", body)
			}
		}},
		{name: "header mutation", path: "/headers", hdr: map[string]string{"x-secret": "hide"}, status: 200, service: "a", check: func(t *testing.T, resp *http.Response, body []byte) {
			e := decodeEcho(t, body)
			if e.Headers["x-added"] != "yes" || e.Headers["x-secret"] != "" || e.Headers["x-client"] != "127.0.0.1" {
				t.Errorf("upstream headers: %v", e.Headers)
			}
			if resp.Header.Get("x-resp") != "added" || resp.Header.Get("x-version") != "" {
				t.Errorf("response headers: %v", resp.Header)
			}
		}},
		{name: "route timeout", path: "/slow", hdr: map[string]string{"x-echo-delay": "2s"}, status: 504, check: func(t *testing.T, _ *http.Response, body []byte) {
			if string(body) != "upstream request timeout" {
				t.Errorf("body = %q", body)
			}
		}},
		{name: "timeout header", path: "/anything", hdr: map[string]string{"x-echo-delay": "2s", "x-envoy-upstream-rq-timeout-ms": "200"}, status: 504},
		{name: "no route", path: "/", hdr: map[string]string{"Host": "unknown.example.com"}, status: 200, service: "a"},
		{name: "no healthy upstream", path: "/nobody", status: 503, check: func(t *testing.T, _ *http.Response, body []byte) {
			if string(body) != "no healthy upstream" {
				t.Errorf("body = %q", body)
			}
		}},
		{name: "unknown cluster", path: "/missing-cluster", status: 503},
		{name: "upstream status passes through", path: "/anything", hdr: map[string]string{"x-echo-status": "503"}, status: 503, service: "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, cl, base+tc.path, tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.status, body)
			}
			if tc.service != "" {
				if got := resp.Header.Get("x-service"); got != tc.service {
					t.Errorf("answered by %q, want %q", got, tc.service)
				}
			}
			if tc.check != nil {
				tc.check(t, resp, body)
			}
		})
	}
	checkStats(t, p.admin)
}

// The admin server reports what the requests did, in Envoy's names.
func checkStats(t *testing.T, admin string) {
	t.Helper()
	resp, body := get(t, http.DefaultClient, "http://"+admin+"/stats/prometheus", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/stats/prometheus: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`envoy_cluster_upstream_rq_total{envoy_cluster_name="a"}`,
		`envoy_cluster_upstream_rq_timeout{envoy_cluster_name="a"}`,
		`envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="test"}`,
		`envoy_cluster_upstream_rq{envoy_cluster_name="a",envoy_response_code="503"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/stats/prometheus lacks %s", want)
		}
	}
	resp, body = get(t, http.DefaultClient, "http://"+admin+"/config_dump", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "type.googleapis.com/envoy.admin.v3.ListenersConfigDump") || !strings.Contains(string(body), "http.test") {
		t.Errorf("/config_dump: %d %.300s", resp.StatusCode, body)
	}
}

// A push that changes routing takes effect while a request loop runs,
// and no request fails; a push with a bad regex is NACKed and traffic
// keeps flowing on the previous config.
func TestProxyConfigPushes(t *testing.T) {
	for _, mode := range []string{"sotw", "delta"} {
		t.Run(mode, func(t *testing.T) { testConfigPushes(t, mode == "delta") })
	}
}

func testConfigPushes(t *testing.T, delta bool) {
	a, b, c := startBackend(t, "a", "v1"), startBackend(t, "b", "v1"), startBackend(t, "c", "v1")
	fx := routingFixture{port: freePort(t), a: a.Addr(), b: b.Addr(), c: c.Addr()}
	xds := startXDS(t)
	xds.push(t, "node-2", "1", fx.resources([]*routev3.Route{{Match: prefix("/"), Action: toCluster("a")}}))
	var extra []string
	if delta {
		extra = append(extra, "--delta")
	}
	p := startProxy(t, xds.addr, "node-2", extra...)
	p.waitReady(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/loop", fx.port)

	var failures, total atomic.Int64
	var seen sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &http.Client{Timeout: 5 * time.Second}
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := cl.Get(url)
				total.Add(1)
				if err != nil || resp.StatusCode != 200 {
					failures.Add(1)
					if err == nil {
						resp.Body.Close()
					}
					continue
				}
				seen.Store(resp.Header.Get("x-service"), true)
				resp.Body.Close()
			}
		}()
	}
	waitFor(t, func() bool { _, ok := seen.Load("a"); return ok })
	xds.push(t, "node-2", "2", fx.resources([]*routev3.Route{{Match: prefix("/"), Action: toCluster("b")}}))
	waitFor(t, func() bool { _, ok := seen.Load("b"); return ok })

	bad := []*routev3.Route{{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/(unclosed"}}}, Action: toCluster("c")}}
	xds.push(t, "node-2", "3", fx.resources(bad))
	waitFor(t, func() bool { return xds.nackCount() > 0 })
	if msg := xds.lastNACK(); !strings.Contains(msg, "safe_regex") {
		t.Errorf("NACK detail %q does not name the field", msg)
	}
	before := total.Load()
	waitFor(t, func() bool { return total.Load() > before+50 })
	close(stop)
	wg.Wait()
	if _, ok := seen.Load("c"); ok {
		t.Error("the rejected config served traffic")
	}
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d requests failed across pushes", n, total.Load())
	}
	t.Logf("%d requests, none failed, across two pushes and a NACK", total.Load())
}

// SIGTERM drains: a request in flight when the signal arrives completes,
// new connections are refused, and the process exits.
func TestProxyDrainsOnSIGTERM(t *testing.T) {
	a := startBackend(t, "a", "v1")
	fx := routingFixture{port: freePort(t), a: a.Addr(), b: a.Addr(), c: a.Addr()}
	xds := startXDS(t)
	xds.push(t, "node-3", "1", fx.resources([]*routev3.Route{{Match: prefix("/"), Action: toCluster("a")}}))
	cmd := exec.Command(binary, "proxy", "--xds", xds.addr, "--node-id", "node-3", "--admin", "", "--drain-time", "5s")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	url := fmt.Sprintf("http://127.0.0.1:%d/", fx.port)
	waitFor(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	type result struct {
		status int
		err    error
	}
	res := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("x-echo-delay", "700ms")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		resp.Body.Close()
		res <- result{status: resp.StatusCode}
	}()
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil || r.status != 200 {
		t.Errorf("in-flight request: %d %v", r.status, r.err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("did not exit after SIGTERM:\n%s", out.String())
	}
	if _, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", fx.port), time.Second); err == nil {
		t.Error("the listener still accepts after shutdown")
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("condition not met within 10s")
}

// An endpoint failing with 5xx is ejected by outlier detection, and the
// admin server shows it: /clusters flags it, /stats/prometheus counts it.
func TestProxyOutlierStateOnAdmin(t *testing.T) {
	good, bad := startBackend(t, "a", "good"), startBackend(t, "a", "bad")
	if err := bad.SetFailPercent(100); err != nil {
		t.Fatal(err)
	}
	fx := routingFixture{port: freePort(t), a: good.Addr(), b: good.Addr(), c: good.Addr()}
	res := fx.resources([]*routev3.Route{{Match: prefix("/"), Action: toCluster("a")}})
	cl := edsCluster("a")
	cl.OutlierDetection = &clusterv3.OutlierDetection{
		Consecutive_5Xx:    wrapperspb.UInt32(1),
		Interval:           durationpb.New(100 * time.Millisecond),
		BaseEjectionTime:   durationpb.New(time.Minute),
		MaxEjectionPercent: wrapperspb.UInt32(100),
	}
	res[resourcev3.ClusterType][0] = cl
	res[resourcev3.EndpointType][0] = assignment("a", good.Addr(), bad.Addr())
	xds := startXDS(t)
	xds.push(t, "node-4", "1", res)
	p := startProxy(t, xds.addr, "node-4")
	p.waitReady(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", fx.port)
	for i := 0; i < 20; i++ {
		resp, _ := get(t, http.DefaultClient, url, nil)
		_ = resp
	}
	waitFor(t, func() bool {
		_, body := get(t, http.DefaultClient, "http://"+p.admin+"/clusters", nil)
		return strings.Contains(string(body), "a::"+bad.Addr()+"::health_flags::/failed_outlier_check")
	})
	// Once ejected, the bad endpoint gets no more traffic.
	before := bad.Requests()
	for i := 0; i < 20; i++ {
		if resp, _ := get(t, http.DefaultClient, url, nil); resp.StatusCode != 200 {
			t.Errorf("request after ejection: %d", resp.StatusCode)
		}
	}
	if n := bad.Requests() - before; n != 0 {
		t.Errorf("the ejected endpoint served %d requests", n)
	}
	_, body := get(t, http.DefaultClient, "http://"+p.admin+"/stats/prometheus", nil)
	if !strings.Contains(string(body), `envoy_cluster_outlier_detection_ejections_enforced_total{envoy_cluster_name="a"} 1`) {
		t.Errorf("/stats/prometheus does not count the ejection")
	}
}
