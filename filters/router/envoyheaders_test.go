package router_test

import (
	"strconv"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestTimingHeaders: x-envoy-expected-rq-timeout-ms tells the backend
// the timeout in force (the route's, or the one a request header set),
// and x-envoy-upstream-service-time tells the client how long the
// backend took, on every request of a connection.
func TestTimingHeaders(t *testing.T) {
	echo := startEcho(t, backend.Options{Service: "echo"})
	gw := start(t, nil, []*routev3.Route{
		route("/ten", "echo", timeout(10*time.Second)),
		route("/none", "echo", timeout(0)),
	}, hcmtest.StaticCluster("echo", echo.Addr()))
	c := hcmtest.Client()
	tests := []struct {
		name, path string
		hdr        []string
		want       string
		minService int
	}{
		{name: "route timeout", path: "/ten", want: "10000"},
		{name: "again on the same connection", path: "/ten", want: "10000"},
		{name: "header shortens it", path: "/ten", hdr: []string{"x-envoy-upstream-rq-timeout-ms", "250"}, want: "250"},
		{name: "route timeout after the header", path: "/ten", want: "10000"},
		{name: "no timeout", path: "/none", want: ""},
		{name: "a slow backend", path: "/ten", hdr: []string{"x-echo-delay", "30ms"}, want: "10000", minService: 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, c, "GET", gw.URL+tt.path, "", tt.hdr...)
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			if got := r.echo(t).Headers["x-envoy-expected-rq-timeout-ms"]; got != tt.want {
				t.Errorf("x-envoy-expected-rq-timeout-ms %q, want %q", got, tt.want)
			}
			st := r.header.Values("X-Envoy-Upstream-Service-Time")
			if len(st) != 1 {
				t.Fatalf("x-envoy-upstream-service-time %q, want one value", st)
			}
			if ms, err := strconv.Atoi(st[0]); err != nil || ms < tt.minService || ms > 5000 {
				t.Errorf("x-envoy-upstream-service-time %q, want a number of ms >= %d", st[0], tt.minService)
			}
		})
	}
}
