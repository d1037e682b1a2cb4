package stats

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/waygate/waygate/filters"
)

func TestLookupReturnsSameStat(t *testing.T) {
	s := NewStore()
	sc := s.Scope("cluster.a.", Tag{TagClusterName, "a"})
	if sc.Counter("upstream_rq_total") != s.Counter("cluster.a.upstream_rq_total") {
		t.Fatal("scope and store lookups of one name returned different counters")
	}
	// Racing creators must agree on one stat.
	var wg sync.WaitGroup
	got := make([]*Counter, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = s.Counter("race")
			got[i].Inc()
		}()
	}
	wg.Wait()
	for _, c := range got {
		if c != got[0] {
			t.Fatal("concurrent creation returned different counters")
		}
	}
	if got[0].Value() != 8 {
		t.Fatalf("race = %d, want 8", got[0].Value())
	}
}

func TestFilterStats(t *testing.T) {
	s := NewStore()
	var fs filters.Stats = s.Scope("http.ingress.").Filters()
	fs.Counter("rbac.denied").Inc()
	fs.Counter("rbac.denied").Add(2)
	if v := s.Counter("http.ingress.rbac.denied").Value(); v != 3 {
		t.Fatalf("http.ingress.rbac.denied = %d, want 3", v)
	}
}

func populated() *Store {
	s := NewStore()
	const cluster = "outbound|9080|v1|reviews.default.svc.cluster.local"
	c := s.Scope("cluster."+cluster+".", Tag{TagClusterName, cluster})
	c.Counter("upstream_rq_total").Add(7)
	c.Counter("upstream_rq_503").Add(2)
	c.Counter("upstream_rq_200").Add(5)
	c.Gauge("upstream_rq_active").Set(3)
	h := s.Scope("http.outbound_0.0.0.0_8080.", Tag{TagHTTPConnManagerPrefix, "outbound_0.0.0.0_8080"})
	h.Counter("downstream_rq_2xx").Add(5)
	h.Counter("downstream_rq_5xx").Add(2)
	rt := h.Histogram("downstream_rq_time")
	for _, d := range []time.Duration{time.Millisecond / 4, 3 * time.Millisecond, 7 * time.Millisecond, 40 * time.Millisecond} {
		rt.Record(d)
	}
	h.Histogram("unused_time")
	s.Scope("listener.0.0.0.0_8080.", Tag{TagListenerAddress, "0.0.0.0_8080"}).Counter("downstream_cx_total").Inc()
	s.Counter("cluster_manager.cds.update_success").Add(4)
	return s
}

func TestWriteText(t *testing.T) {
	s := populated()
	var b bytes.Buffer
	if err := s.WriteText(&b, nil); err != nil {
		t.Fatal(err)
	}
	want := `cluster.outbound|9080|v1|reviews.default.svc.cluster.local.upstream_rq_200: 5
cluster.outbound|9080|v1|reviews.default.svc.cluster.local.upstream_rq_503: 2
cluster.outbound|9080|v1|reviews.default.svc.cluster.local.upstream_rq_active: 3
cluster.outbound|9080|v1|reviews.default.svc.cluster.local.upstream_rq_total: 7
cluster_manager.cds.update_success: 4
http.outbound_0.0.0.0_8080.downstream_rq_2xx: 5
http.outbound_0.0.0.0_8080.downstream_rq_5xx: 2
listener.0.0.0.0_8080.downstream_cx_total: 1
http.outbound_0.0.0.0_8080.downstream_rq_time: P0(nan,0) P25(nan,0.5) P50(nan,5) P75(nan,10) P90(nan,40) P95(nan,45) P99(nan,49) P99.5(nan,49.5) P99.9(nan,49.9) P100(nan,50)
http.outbound_0.0.0.0_8080.unused_time: No recorded values
`
	if b.String() != want {
		t.Errorf("WriteText:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	s.WriteText(&b, regexp.MustCompile(`upstream_rq_5`))
	if got := b.String(); got != "cluster.outbound|9080|v1|reviews.default.svc.cluster.local.upstream_rq_503: 2\n" {
		t.Errorf("filtered WriteText = %q", got)
	}
}

func TestWriteJSON(t *testing.T) {
	s := populated()
	var b bytes.Buffer
	if err := s.WriteJSON(&b, regexp.MustCompile(`^http\.`)); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Stats []struct {
			Name       string `json:"name"`
			Value      *int64 `json:"value"`
			Histograms *struct {
				Supported []float64 `json:"supported_quantiles"`
				Computed  []struct {
					Name   string `json:"name"`
					Values []struct {
						Interval   *float64 `json:"interval"`
						Cumulative *float64 `json:"cumulative"`
					} `json:"values"`
				} `json:"computed_quantiles"`
			} `json:"histograms"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(got.Stats) != 3 || got.Stats[0].Name != "http.outbound_0.0.0.0_8080.downstream_rq_2xx" || *got.Stats[0].Value != 5 {
		t.Fatalf("stats = %s", b.String())
	}
	h := got.Stats[2].Histograms
	if h == nil || len(h.Computed) != 2 || len(h.Supported) != 10 || *h.Computed[0].Values[2].Cumulative != 5 || h.Computed[1].Values[0].Cumulative != nil {
		t.Fatalf("histograms = %s", b.String())
	}
}

func TestWritePrometheus(t *testing.T) {
	s := populated()
	var b bytes.Buffer
	if err := s.WritePrometheus(&b, nil); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	const cluster = "outbound|9080|v1|reviews.default.svc.cluster.local"
	tests := []struct {
		family string
		labels map[string]string
		value  float64
	}{
		{"envoy_cluster_upstream_rq_total", map[string]string{"envoy_cluster_name": cluster}, 7},
		{"envoy_cluster_upstream_rq", map[string]string{"envoy_cluster_name": cluster, "envoy_response_code": "503"}, 2},
		{"envoy_cluster_upstream_rq", map[string]string{"envoy_cluster_name": cluster, "envoy_response_code": "200"}, 5},
		{"envoy_cluster_upstream_rq_active", map[string]string{"envoy_cluster_name": cluster}, 3},
		{"envoy_http_downstream_rq_xx", map[string]string{"envoy_http_conn_manager_prefix": "outbound_0.0.0.0_8080", "envoy_response_code_class": "2"}, 5},
		{"envoy_http_downstream_rq_xx", map[string]string{"envoy_http_conn_manager_prefix": "outbound_0.0.0.0_8080", "envoy_response_code_class": "5"}, 2},
		{"envoy_listener_downstream_cx_total", map[string]string{"envoy_listener_address": "0.0.0.0_8080"}, 1},
		{"envoy_cluster_manager_cds_update_success", map[string]string{}, 4},
		{"envoy_http_downstream_rq_time", map[string]string{"envoy_http_conn_manager_prefix": "outbound_0.0.0.0_8080"}, 4},
	}
	for _, tt := range tests {
		mf := mfs[tt.family]
		if mf == nil {
			t.Errorf("no family %s in\n%s", tt.family, b.String())
			continue
		}
		found := false
		for _, m := range mf.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if len(labels) != len(tt.labels) {
				continue
			}
			match := true
			for k, v := range tt.labels {
				match = match && labels[k] == v
			}
			if !match {
				continue
			}
			found = true
			var v float64
			switch {
			case m.Counter != nil:
				v = m.Counter.GetValue()
			case m.Gauge != nil:
				v = m.Gauge.GetValue()
			case m.Histogram != nil:
				v = float64(m.Histogram.GetSampleCount())
			}
			if v != tt.value {
				t.Errorf("%s%v = %v, want %v", tt.family, tt.labels, v, tt.value)
			}
		}
		if !found {
			t.Errorf("%s has no metric with labels %v", tt.family, tt.labels)
		}
	}
	for _, runtime := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total"} {
		if mfs[runtime] == nil {
			t.Errorf("runtime metric %s missing", runtime)
		}
	}
	if !strings.Contains(b.String(), "# TYPE envoy_cluster_upstream_rq counter\n") {
		t.Errorf("missing TYPE line in\n%s", b.String())
	}

	b.Reset()
	if err := s.WritePrometheus(&b, regexp.MustCompile(`^listener\.`)); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.Contains(got, "envoy_listener_downstream_cx_total") || strings.Contains(got, "envoy_cluster") || strings.Contains(got, "go_goroutines") {
		t.Errorf("filtered prometheus output:\n%s", got)
	}
}

func BenchmarkCounterInc(b *testing.B) {
	c := NewStore().Scope("cluster.a.", Tag{TagClusterName, "a"}).Counter("upstream_rq_total")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := NewStore().Histogram("http.p.downstream_rq_time")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := time.Duration(0)
		for pb.Next() {
			d += 37 * time.Microsecond
			h.Record(d % (2 * time.Second))
		}
	})
}

func BenchmarkCounterLookup(b *testing.B) {
	sc := NewStore().Scope("cluster.a.", Tag{TagClusterName, "a"})
	sc.Counter("upstream_rq_total")
	b.ReportAllocs()
	for b.Loop() {
		sc.Counter("upstream_rq_total")
	}
}
