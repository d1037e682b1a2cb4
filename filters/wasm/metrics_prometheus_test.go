package wasm

import (
	"strings"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestMetricsPrometheus checks the metrics a plugin defines as
// /stats/prometheus renders them: under the plugin's own names, without
// the wasmcustom prefix (as Envoy exports them), a counter, a gauge and
// a histogram with its buckets, count and sum.
func TestMetricsPrometheus(t *testing.T) {
	backend := startEcho(t, "backend")
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "examples", mode("metrics")))},
		hcmtest.StaticCluster("backend", backend.Addr()))
	for range 3 {
		do(t, "GET", g.url+"/", "", "my-custom-header", "foo")
	}
	var b strings.Builder
	if err := g.store.WritePrometheus(&b, nil); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# TYPE custom_header_value_counts_value_foo_reporter_wasmgosdk counter",
		"custom_header_value_counts_value_foo_reporter_wasmgosdk 3",
		"# TYPE last_header_length gauge",
		"last_header_length 3",
		"# TYPE header_length histogram",
		"header_length_count 3",
		"header_length_sum 9",
		`header_length_bucket{le="+Inf"} 3`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, grepPlugin(out))
		}
	}
}

// grepPlugin keeps the lines about the plugin's metrics.
func grepPlugin(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "header_") || strings.Contains(l, "wasm") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
