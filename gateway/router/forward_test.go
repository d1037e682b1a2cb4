package router

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/waygate/waygate/filters"
)

func oneAction(t *testing.T, match, action string) *Route {
	t.Helper()
	tbl := compileYAML(t, fmt.Sprintf(`
virtual_hosts:
- name: vh
  domains: ["*"]
  retry_policy: {retry_on: "5xx", num_retries: 7}
  routes:
  - name: r
    match: %s
    route: %s
`, match, action))
	return tbl.VirtualHosts()[0].Routes()[0]
}

func TestPathRewrite(t *testing.T) {
	tests := []struct {
		name, match, action, path, want string
	}{
		{"prefix", `{prefix: /api/}`, `{cluster: c, prefix_rewrite: /}`, "/api/users?x=1", "/users?x=1"},
		{"prefix keeps the rest", `{prefix: /api}`, `{cluster: c, prefix_rewrite: /v2}`, "/api/users", "/v2/users"},
		{"case-insensitive prefix", `{prefix: /API, case_sensitive: false}`, `{cluster: c, prefix_rewrite: /x}`, "/api/u", "/x/u"},
		{"path route replaces the path", `{path: /old}`, `{cluster: c, prefix_rewrite: /new}`, "/old?q", "/new?q"},
		{"regex route replaces the path", `{safe_regex: {regex: "/r/.*"}}`, `{cluster: c, prefix_rewrite: /fixed}`, "/r/abc?q", "/fixed?q"},
		{"regex_rewrite with groups", `{prefix: /}`, `{cluster: c, regex_rewrite: {pattern: {regex: "^/service/([^/]+)(/.*)$"}, substitution: "\\2/instance/\\1"}}`,
			"/service/foo/v1/api?a=b", "/v1/api/instance/foo?a=b"},
		{"regex_rewrite replaces every match", `{prefix: /}`, `{cluster: c, regex_rewrite: {pattern: {regex: "one"}, substitution: "two"}}`,
			"/xxx/one/yyy/one/zzz", "/xxx/two/yyy/two/zzz"},
		{"regex_rewrite whole match and backslash", `{prefix: /}`, `{cluster: c, regex_rewrite: {pattern: {regex: "a+"}, substitution: "[\\0\\\\]"}}`,
			"/baab", "/b[aa\\]b"},
		{"regex_rewrite leaves a dollar alone", `{prefix: /}`, `{cluster: c, regex_rewrite: {pattern: {regex: "x"}, substitution: "$1"}}`,
			"/x", "/$1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := oneAction(t, tt.match, tt.action)
			got, ok := r.RewritePath(tt.path)
			if !ok || got != tt.want {
				t.Errorf("RewritePath(%q) = %q, %v; want %q", tt.path, got, ok, tt.want)
			}
		})
	}
	if _, ok := oneAction(t, `{prefix: /}`, `{cluster: c}`).RewritePath("/x"); ok {
		t.Error("a route without rewrites reported a rewrite")
	}
}

func TestFinalizeRequest(t *testing.T) {
	tests := []struct {
		name, action string
		kv           []string
		wantHost     string
		wantPath     string
		wantHeader   http.Header
	}{
		{"host_rewrite_literal", `{cluster: c, host_rewrite_literal: backend.internal, append_x_forwarded_host: true}`, nil,
			"backend.internal", "/svc/a?q", http.Header{"X-Forwarded-Host": {"front.com"}}},
		{"host_rewrite_header", `{cluster: c, host_rewrite_header: x-target}`, []string{"x-target", "t.com"},
			"t.com", "/svc/a?q", http.Header{"X-Target": {"t.com"}}},
		{"host_rewrite_header missing keeps the host", `{cluster: c, host_rewrite_header: x-target}`, nil,
			"front.com", "/svc/a?q", http.Header{}},
		{"host_rewrite_path_regex", `{cluster: c, host_rewrite_path_regex: {pattern: {regex: "^/(.+)/.+$"}, substitution: "\\1.internal"}}`, nil,
			"svc.internal", "/svc/a?q", http.Header{}},
		{"prefix_rewrite records the original path", `{cluster: c, prefix_rewrite: /v2/}`, nil,
			"front.com", "/v2/a?q", http.Header{"X-Envoy-Original-Path": {"/svc/a?q"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := oneAction(t, `{prefix: /svc/}`, tt.action)
			x := &filters.Exchange{Request: *newReq("GET", "front.com", "/svc/a?q", tt.kv...)}
			r.FinalizeRequest(x, nil, true)
			if x.Request.Authority != tt.wantHost || x.Request.Path != tt.wantPath {
				t.Errorf("got %s %s, want %s %s", x.Request.Authority, x.Request.Path, tt.wantHost, tt.wantPath)
			}
			if !reflect.DeepEqual(x.Request.Header, tt.wantHeader) {
				t.Errorf("headers %v, want %v", x.Request.Header, tt.wantHeader)
			}
		})
	}
}

func TestForwardSettings(t *testing.T) {
	tests := []struct {
		name   string
		action string
		check  func(f *Forward) string
	}{
		{"default timeout", `{cluster: c}`, func(f *Forward) string {
			return expect(f.Timeout, DefaultTimeout)
		}},
		{"zero disables the timeout", `{cluster: c, timeout: 0s}`, func(f *Forward) string {
			return expect(f.Timeout, time.Duration(0))
		}},
		{"timeouts", `{cluster: c, timeout: 0.5s, idle_timeout: 3s, max_grpc_timeout: 0s, grpc_timeout_offset: 0.01s,
		  max_stream_duration: {max_stream_duration: 60s, grpc_timeout_header_max: 5s}}`, func(f *Forward) string {
			return expect(
				[]any{f.Timeout, *f.IdleTimeout, *f.MaxGrpcTimeout, *f.GrpcTimeoutOffset, *f.MaxStreamDuration.Max, *f.MaxStreamDuration.GrpcTimeoutHeaderMax, f.MaxStreamDuration.GrpcTimeoutHeaderOffset},
				[]any{500 * time.Millisecond, 3 * time.Second, time.Duration(0), 10 * time.Millisecond, time.Minute, 5 * time.Second, (*time.Duration)(nil)})
		}},
		{"unset optional timeouts are nil", `{cluster: c}`, func(f *Forward) string {
			return expect([]bool{f.IdleTimeout == nil, f.MaxGrpcTimeout == nil, f.MaxStreamDuration == nil}, []bool{true, true, true})
		}},
		{"route retry policy", `{cluster: c, retry_policy: {retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
		  num_retries: 2, per_try_timeout: 1s, retriable_status_codes: [503, 504], retry_back_off: {base_interval: 0.1s},
		  retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts}], host_selection_retry_max_attempts: 5}}`, func(f *Forward) string {
			p := f.Retry
			want := RetryConnectFailure | RetryRefusedStream | RetryGrpcUnavailable | RetryGrpcCancelled | RetryRetriableStatusCodes
			return expect([]any{p.On, p.NumRetries, p.PerTryTimeout, p.RetriableStatus(503), p.RetriableStatus(500), p.BackOffBase, p.BackOffMax, p.HostPredicates, p.HostSelectionMaxAttempts},
				[]any{want, uint32(2), time.Second, true, false, 100 * time.Millisecond, time.Second, []string{"envoy.retry_host_predicates.previous_hosts"}, int64(5)})
		}},
		{"retry defaults", `{cluster: c, retry_policy: {retry_on: "5xx"}}`, func(f *Forward) string {
			p := f.Retry
			return expect([]any{p.NumRetries, p.BackOffBase, p.BackOffMax, p.HostSelectionMaxAttempts}, []any{uint32(1), 25 * time.Millisecond, 250 * time.Millisecond, int64(1)})
		}},
		{"virtual host retry policy applies when the route has none", `{cluster: c}`, func(f *Forward) string {
			return expect([]any{f.Retry.On, f.Retry.NumRetries}, []any{Retry5xx, uint32(7)})
		}},
		{"mirrors", `{cluster: c, request_mirror_policies: [{cluster: shadow, runtime_fraction: {default_value: {numerator: 10}}}, {cluster_header: x-mirror}]}`, func(f *Forward) string {
			req := newReq("GET", "h", "/", "x-mirror", "m2")
			return expect([]any{len(f.Mirrors), f.Mirrors[0].MirrorCluster(req), f.Mirrors[0].Sampled(5), f.Mirrors[0].Sampled(50), f.Mirrors[1].MirrorCluster(req), f.Mirrors[1].Sampled(99)},
				[]any{2, "shadow", true, false, "m2", true})
		}},
		{"upgrades and priority", `{cluster: c, upgrade_configs: [{upgrade_type: websocket}, {upgrade_type: CONNECT, enabled: false}], priority: HIGH}`, func(f *Forward) string {
			return expect([]any{f.Upgrades, f.Priority}, []any{map[string]bool{"websocket": true, "CONNECT": false}, "HIGH"})
		}},
		{"cluster_not_found_response_code", `{cluster: c, cluster_not_found_response_code: NOT_FOUND}`, func(f *Forward) string {
			return expect(f.ClusterNotFoundCode, 404)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := oneAction(t, `{prefix: /}`, tt.action)
			if msg := tt.check(r.Forward); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func expect(got, want any) string {
	if reflect.DeepEqual(got, want) {
		return ""
	}
	return fmt.Sprintf("got %v, want %v", got, want)
}

func TestTarget(t *testing.T) {
	req := newReq("GET", "h", "/", "x-cluster", "from-header")
	if c, wc := oneAction(t, `{prefix: /}`, `{cluster: one}`).Target(req, 0); c != "one" || wc != nil {
		t.Errorf("cluster: got %q %v", c, wc)
	}
	if c, _ := oneAction(t, `{prefix: /}`, `{cluster_header: x-cluster}`).Target(req, 0); c != "from-header" {
		t.Errorf("cluster_header: got %q", c)
	}
	r := oneAction(t, `{prefix: /}`, `{weighted_clusters: {clusters: [{name: a, weight: 1}, {name: b, weight: 1}]}}`)
	if c, wc := r.Target(req, 1); c != "b" || wc == nil || wc.Cluster() != "b" || wc.Route() != r {
		t.Errorf("weighted: got %q %v", c, wc)
	}
	if r.Cluster() != "" {
		t.Errorf("weighted route Cluster() = %q, want empty", r.Cluster())
	}
	if gr, gwc := Resolve(wcOf(r.Target(req, 0))); gr != r || gwc == nil {
		t.Errorf("Resolve(weighted cluster) = %v, %v", gr, gwc)
	}
	if gr, gwc := Resolve(r); gr != r || gwc != nil {
		t.Errorf("Resolve(route) = %v, %v", gr, gwc)
	}
	if gr, _ := Resolve(nil); gr != nil {
		t.Errorf("Resolve(nil) = %v", gr)
	}
}

func TestWeightedDistribution(t *testing.T) {
	r := oneAction(t, `{prefix: /}`, `{weighted_clusters: {clusters: [
	  {name: "outbound|9080|v1|reviews", weight: 80}, {name: "outbound|9080|v3|reviews", weight: 15}, {name: "outbound|9080|v2|reviews", weight: 5}]}}`)
	rng := rand.New(rand.NewPCG(42, 7))
	const n = 100000
	counts := map[string]int{}
	req := newReq("GET", "h", "/")
	for i := 0; i < n; i++ {
		c, _ := r.Target(req, rng.Uint64())
		counts[c]++
	}
	for name, weight := range map[string]float64{"outbound|9080|v1|reviews": 80, "outbound|9080|v3|reviews": 15, "outbound|9080|v2|reviews": 5} {
		got := float64(counts[name]) / n * 100
		if math.Abs(got-weight) > 1 {
			t.Errorf("%s: %.2f%% of picks, want %.0f%% ± 1", name, got, weight)
		}
	}
}

func TestWeightedHeaderRandomValue(t *testing.T) {
	r := oneAction(t, `{prefix: /}`, `{weighted_clusters: {header_name: x-pick, clusters: [{name: a, weight: 50}, {name: b, weight: 50}]}}`)
	for v, want := range map[string]string{"0": "a", "49": "a", "50": "b", "149": "a", "150": "b"} {
		if c, _ := r.Target(newReq("GET", "h", "/", "x-pick", v), 0); c != want {
			t.Errorf("x-pick %s: got %s, want %s", v, c, want)
		}
	}
}

func TestWeightedClusterHostRewrite(t *testing.T) {
	r := oneAction(t, `{prefix: /}`, `{weighted_clusters: {clusters: [{name: a, weight: 1, host_rewrite_literal: a.internal}]}}`)
	x := &filters.Exchange{Request: *newReq("GET", "h", "/")}
	_, wc := r.Target(&x.Request, 0)
	r.FinalizeRequest(x, wc, false)
	if x.Request.Authority != "a.internal" {
		t.Errorf("authority = %q", x.Request.Authority)
	}
}

func wcOf(_ string, wc *WeightedCluster) filters.Route { return wc }

func TestHostRewriteFormat(t *testing.T) {
	r := oneAction(t, `{prefix: /}`, `{cluster: c, host_rewrite: "%REQ(x-tenant)%.internal"}`)
	x := &filters.Exchange{Request: *newReq("GET", "h", "/", "x-tenant", "acme")}
	if h, ok := r.RewriteHost(x); !ok || h != "acme.internal" {
		t.Errorf("RewriteHost = %q, %v", h, ok)
	}
	r = oneAction(t, `{prefix: /}`, `{cluster: c, auto_host_rewrite: true}`)
	if _, ok := r.RewriteHost(x); ok || !r.Forward.AutoHostRewrite {
		t.Error("auto_host_rewrite is the router's to apply")
	}
}
