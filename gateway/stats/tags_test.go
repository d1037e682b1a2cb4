package stats

import (
	"maps"
	"strings"
	"testing"
)

func TestPrometheusName(t *testing.T) {
	tests := []struct {
		name   string
		stat   string
		want   string
		labels map[string]string
	}{
		{"cluster name", "cluster.backend.upstream_rq_total", "envoy_cluster_upstream_rq_total",
			map[string]string{"envoy_cluster_name": "backend"}},
		{"cluster response code", "cluster.backend.upstream_rq_503", "envoy_cluster_upstream_rq",
			map[string]string{"envoy_cluster_name": "backend", "envoy_response_code": "503"}},
		{"cluster response code class", "cluster.backend.upstream_rq_5xx", "envoy_cluster_upstream_rq_xx",
			map[string]string{"envoy_cluster_name": "backend", "envoy_response_code_class": "5"}},
		{"http prefix and class", "http.ingress.downstream_rq_2xx", "envoy_http_downstream_rq_xx",
			map[string]string{"envoy_http_conn_manager_prefix": "ingress", "envoy_response_code_class": "2"}},
		{"listener address", "listener.0.0.0.0_8080.downstream_cx_total", "envoy_listener_downstream_cx_total",
			map[string]string{"envoy_listener_address": "0.0.0.0_8080"}},
		{"listener ipv6 address", "listener.[__]_8080.downstream_cx_total", "envoy_listener_downstream_cx_total",
			map[string]string{"envoy_listener_address": "[__]_8080"}},
		{"listener http prefix", "listener.0.0.0.0_8080.http.ingress.downstream_rq_3xx", "envoy_listener_http_downstream_rq_xx",
			map[string]string{"envoy_listener_address": "0.0.0.0_8080", "envoy_http_conn_manager_prefix": "ingress", "envoy_response_code_class": "3"}},
		{"named listener has no address", "listener.admin.downstream_cx_total", "envoy_listener_admin_downstream_cx_total", map[string]string{}},
		{"untagged", "cluster_manager.cds.update_success", "envoy_cluster_manager_cds_update_success", map[string]string{}},
		{"not a code", "cluster.a.upstream_rq_50", "envoy_cluster_upstream_rq_50", map[string]string{"envoy_cluster_name": "a"}},
		{"code not at end of rq", "http.p.downstream_rq_time", "envoy_http_downstream_rq_time",
			map[string]string{"envoy_http_conn_manager_prefix": "p"}},
		{"odd characters", "wasm.my-plugin:x", "envoy_wasm_my_plugin_x", map[string]string{}},
		{"wasm plugin metric", "wasmcustom.istio_requests_total", "istio_requests_total", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, labels := PrometheusName(tt.stat)
			if got != tt.want || !maps.Equal(labels, tt.labels) {
				t.Errorf("PrometheusName(%q) = %s %v, want %s %v", tt.stat, got, labels, tt.want, tt.labels)
			}
		})
	}
}

func TestScopeTags(t *testing.T) {
	s := NewStore()
	const cluster = "outbound|9080|v1|reviews.default.svc.cluster.local"
	tests := []struct {
		name      string
		stat      *meta
		full      string
		extracted string
		tags      []Tag
	}{
		{"cluster with dots",
			&s.Scope("cluster."+cluster+".", Tag{TagClusterName, cluster}).Counter("upstream_rq_pending_overflow").meta,
			"cluster." + cluster + ".upstream_rq_pending_overflow", "cluster.upstream_rq_pending_overflow",
			[]Tag{{TagClusterName, cluster}}},
		{"cluster with dots and code",
			&s.Scope("cluster."+cluster+".", Tag{TagClusterName, cluster}).Counter("upstream_rq_503").meta,
			"cluster." + cluster + ".upstream_rq_503", "cluster.upstream_rq",
			[]Tag{{TagClusterName, cluster}, {TagResponseCode, "503"}}},
		{"http prefix with dots",
			&s.Scope("http.outbound_0.0.0.0_8080.", Tag{TagHTTPConnManagerPrefix, "outbound_0.0.0.0_8080"}).Counter("downstream_rq_2xx").meta,
			"http.outbound_0.0.0.0_8080.downstream_rq_2xx", "http.downstream_rq_xx",
			[]Tag{{TagHTTPConnManagerPrefix, "outbound_0.0.0.0_8080"}, {TagResponseCodeClass, "2"}}},
		{"nested scopes",
			&s.Scope("listener.0.0.0.0_8080.", Tag{TagListenerAddress, "0.0.0.0_8080"}).Scope("http.in.gress.", Tag{TagHTTPConnManagerPrefix, "in.gress"}).Gauge("downstream_rq_active").meta,
			"listener.0.0.0.0_8080.http.in.gress.downstream_rq_active", "listener.http.downstream_rq_active",
			[]Tag{{TagListenerAddress, "0.0.0.0_8080"}, {TagHTTPConnManagerPrefix, "in.gress"}}},
		{"tag value absent from prefix",
			&s.Scope("wasm.", Tag{"plugin", "p1"}).Histogram("latency").meta,
			"wasm.latency", "wasm.latency", []Tag{{"plugin", "p1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.stat.name != tt.full || tt.stat.extracted != tt.extracted || !equalTags(tt.stat.tags, tt.tags) {
				t.Errorf("got %q %q %v, want %q %q %v", tt.stat.name, tt.stat.extracted, tt.stat.tags, tt.full, tt.extracted, tt.tags)
			}
		})
	}
}

func equalTags(a, b []Tag) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzPrometheusName checks that tag extraction never panics and that the
// extracted name plus the tag values account for the whole name.
func FuzzPrometheusName(f *testing.F) {
	for _, s := range []string{
		"cluster.a.upstream_rq_503", "http.x.downstream_rq_2xx", "listener.0.0.0.0_80.http.p.downstream_rq_1xx",
		"listener.[::1]_80.x", "listener..", "cluster..", "_rq_000", "http.", "listener.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		m := extract(name, nil, nil)
		n := len(m.extracted)
		for _, tg := range m.tags {
			n += len(tg.Value)
			if !strings.Contains(name, tg.Value) {
				t.Fatalf("tag %v not in %q", tg, name)
			}
		}
		if n > len(name) {
			t.Fatalf("%q: extracted %q and tags %v are longer than the name", name, m.extracted, m.tags)
		}
		promName(m.extracted)
	})
}
