package hcm_test

import (
	"net/netip"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestEdgeRequests covers what use_remote_address changes for clients
// outside the trust boundary: their control headers and request ids are
// not trusted.
func TestEdgeRequests(t *testing.T) {
	echo := startEcho(t, "echo")
	tests := []struct {
		name    string
		remote  string
		hcm     func(m *hcmv3.HttpConnectionManager)
		hdr     []string
		want    int
		headers map[string]string // "" means absent
		newID   bool              // the backend saw another x-request-id than the client sent
	}{{
		name:   "an external client cannot shorten the route timeout",
		remote: "203.0.113.7:4000",
		hcm:    remote,
		hdr:    []string{"x-echo-delay", "100ms", "x-envoy-upstream-rq-timeout-ms", "1", "x-envoy-retry-on", "5xx", "x-envoy-internal", "true"},
		want:   200,
		headers: map[string]string{
			"x-envoy-upstream-rq-timeout-ms": "", "x-envoy-retry-on": "", "x-envoy-internal": "",
			"x-envoy-external-address": "203.0.113.7", "x-forwarded-for": "203.0.113.7",
		},
	}, {
		name:   "an internal client can",
		remote: "10.1.2.3:4000",
		hcm:    remote,
		hdr:    []string{"x-echo-delay", "2s", "x-envoy-upstream-rq-timeout-ms", "1"},
		want:   504,
	}, {
		name:   "an external request id is replaced",
		remote: "203.0.113.7:4000",
		hcm:    remote,
		hdr:    []string{"x-request-id", "client-chosen"},
		want:   200,
		newID:  true,
	}, {
		name:   "preserve_external_request_id keeps it",
		remote: "203.0.113.7:4000",
		hcm: func(m *hcmv3.HttpConnectionManager) {
			remote(m)
			m.PreserveExternalRequestId = true
		},
		hdr:     []string{"x-request-id", "client-chosen"},
		want:    200,
		headers: map[string]string{"x-request-id": "client-chosen"},
	}, {
		name:    "an internal request id is kept",
		remote:  "10.1.2.3:4000",
		hcm:     remote,
		hdr:     []string{"x-request-id", "client-chosen"},
		want:    200,
		headers: map[string]string{"x-request-id": "client-chosen", "x-envoy-internal": "true"},
	}, {
		name:    "without use_remote_address nothing is cleaned",
		remote:  "203.0.113.7:4000",
		hdr:     []string{"x-request-id", "client-chosen", "x-envoy-retry-on", "5xx"},
		want:    200,
		headers: map[string]string{"x-request-id": "client-chosen", "x-envoy-retry-on": "5xx"},
	}, {
		name:    "internal_only_headers are removed from external requests",
		remote:  "203.0.113.7:4000",
		hcm:     func(m *hcmv3.HttpConnectionManager) { remote(m); internalOnly(m, "x-debug") },
		hdr:     []string{"x-debug", "1"},
		want:    200,
		headers: map[string]string{"x-debug": ""},
	}, {
		name:    "and kept on internal ones",
		remote:  "10.1.2.3:4000",
		hcm:     func(m *hcmv3.HttpConnectionManager) { remote(m); internalOnly(m, "x-debug") },
		hdr:     []string{"x-debug", "1"},
		want:    200,
		headers: map[string]string{"x-debug": "1"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := hcmtest.HCM(t, hcmtest.Routes(hcmtest.Prefix("/", "echo")))
			if tt.hcm != nil {
				tt.hcm(m)
			}
			gw := hcmtest.Start(t, hcmtest.Options{
				HCM:        m,
				Clusters:   staticClusters([]*clusterSpec{{"echo", echo.Addr()}}),
				RemoteAddr: netip.MustParseAddrPort(tt.remote),
			})
			r := do(t, hcmtest.Client(), "GET", gw.URL+"/", "", tt.hdr...)
			if r.status != tt.want {
				t.Fatalf("status %d (%.100q), want %d", r.status, r.body, tt.want)
			}
			if tt.want != 200 {
				return
			}
			e := r.echo(t)
			for k, v := range tt.headers {
				if got, ok := e.Headers[k]; got != v || (v == "" && ok) {
					t.Errorf("backend saw %s = %q, want %q", k, got, v)
				}
			}
			if id := e.Headers["x-request-id"]; tt.newID && (id == "client-chosen" || !uuid4.MatchString(id)) {
				t.Errorf("x-request-id = %q, want a new UUID", id)
			}
		})
	}
}

func internalOnly(m *hcmv3.HttpConnectionManager, h string) {
	m.GetRouteConfig().InternalOnlyHeaders = append(m.GetRouteConfig().InternalOnlyHeaders, h)
}
