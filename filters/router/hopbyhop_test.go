package router_test

import (
	"net/http"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/waygate/waygate/conformance/backend"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestProxyHeaders covers headers the proxy must neither invent nor
// pass on.
func TestProxyHeaders(t *testing.T) {
	echo := startEcho(t, backend.Options{Service: "echo"})
	hop := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "for the proxy only")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Connection", "keep-alive")
		h.Set("Upgrade", "h2c")
		h.Set("X-Kept", "1")
	})
	gw := start(t, nil, []*routev3.Route{route("/hop", "hop", nil), route("/", "echo", nil)},
		hcmtest.StaticCluster("echo", echo.Addr()), hcmtest.StaticCluster("hop", hop))

	t.Run("no user-agent is added upstream", func(t *testing.T) {
		for _, c := range []*http.Client{hcmtest.Client(), hcmtest.H2CClient()} {
			r := do(t, c, "GET", gw.URL+"/", "", "User-Agent", "")
			if ua, ok := r.echo(t).Headers["user-agent"]; ok {
				t.Errorf("backend saw user-agent %q, the client sent none", ua)
			}
		}
	})
	t.Run("the client's user-agent is forwarded", func(t *testing.T) {
		r := do(t, hcmtest.Client(), "GET", gw.URL+"/", "", "User-Agent", "curl/8")
		if ua := r.echo(t).Headers["user-agent"]; ua != "curl/8" {
			t.Errorf("backend saw user-agent %q, want curl/8", ua)
		}
	})
	t.Run("hop-by-hop response headers are not forwarded", func(t *testing.T) {
		r := do(t, hcmtest.Client(), "GET", gw.URL+"/hop", "")
		for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Connection", "Upgrade"} {
			if v := r.header.Get(k); v != "" {
				t.Errorf("client got %s: %q", k, v)
			}
		}
		if r.header.Get("X-Kept") != "1" {
			t.Errorf("end-to-end header X-Kept lost")
		}
	})
}
