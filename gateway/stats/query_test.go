package stats

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestUsedOnlyAndGaugeFunc(t *testing.T) {
	s := NewStore()
	s.Counter("a.used").Inc()
	s.Counter("a.unused")
	s.Gauge("a.gauge_zero")
	s.Gauge("a.gauge_set").Set(2)
	state := int64(2)
	s.GaugeFunc("server.state", func() int64 { return state })
	s.Histogram("a.hist_empty")
	s.Histogram("a.hist").RecordValue(3)

	var b bytes.Buffer
	s.WriteText(&b, nil, UsedOnly())
	// One value in the (1,5] bucket: percentiles interpolate across it.
	want := "a.gauge_set: 2\na.used: 1\nserver.state: 2\n" +
		"a.hist: P0(nan,1) P25(nan,2) P50(nan,3) P75(nan,4) P90(nan,4.6) P95(nan,4.8) P99(nan,4.96) P99.5(nan,4.98) P99.9(nan,4.996) P100(nan,5)\n"
	if b.String() != want {
		t.Errorf("usedonly:\n%s\nwant:\n%s", b.String(), want)
	}

	// A read-on-demand gauge follows its source, also at state 0 (LIVE),
	// which ?usedonly must still list: probes grep for server.state.
	state = 0
	b.Reset()
	s.WriteText(&b, regexp.MustCompile(`^server\.state$`), UsedOnly())
	if b.String() != "server.state: 0\n" {
		t.Errorf("server.state = %q", b.String())
	}

	b.Reset()
	s.WritePrometheus(&b, regexp.MustCompile(`^a\.`), UsedOnly())
	if out := b.String(); strings.Contains(out, "unused") || strings.Contains(out, "gauge_zero") || strings.Contains(out, "hist_empty") || !strings.Contains(out, "envoy_a_used 1") {
		t.Errorf("prometheus usedonly:\n%s", out)
	}
}

// Two Envoy names that sanitize to one Prometheus series cannot both be
// exported; the rest of the exposition must still be written.
func TestPrometheusClash(t *testing.T) {
	s := NewStore()
	s.Counter("wasm.a.b").Inc()
	s.Counter("wasm.a_b").Inc()
	s.Counter("cluster_manager.cds.update_success").Inc()
	var b bytes.Buffer
	err := s.WritePrometheus(&b, nil)
	if err == nil {
		t.Error("clash not reported")
	}
	if !strings.Contains(b.String(), "envoy_cluster_manager_cds_update_success 1") || !strings.Contains(b.String(), "go_goroutines") {
		t.Errorf("exposition incomplete after a clash:\n%s", b.String())
	}
}
