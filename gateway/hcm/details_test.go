package hcm_test

import (
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestResponseCodeDetails checks what a response filter reads as
// Envoy's %RESPONSE_CODE_DETAILS%: via_upstream for the upstream's own
// answer, the reason for the router's local replies.
func TestResponseCodeDetails(t *testing.T) {
	echo := startEcho(t, "echo")
	gw := hcmtest.Start(t, hcmtest.Options{
		HCM: hcmtest.HCM(t, hcmtest.Routes(hcmtest.Prefix("/gone", "missing"), hcmtest.Prefix("/", "echo")),
			[]*hcmv3.HttpFilter{tag(t, "a", "details")}...),
		Clusters: staticClusters([]*clusterSpec{{"echo", echo.Addr()}}),
	})
	for _, c := range []struct{ path, want string }{
		{"/", "via_upstream"},
		{"/gone", "cluster_not_found"},
	} {
		r := do(t, hcmtest.Client(), "GET", gw.URL+c.path, "")
		if got := r.header.Get("X-Details"); got != c.want {
			t.Errorf("GET %s: status %d, details %q, want %q", c.path, r.status, got, c.want)
		}
	}
}
