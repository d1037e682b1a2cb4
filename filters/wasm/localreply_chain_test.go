package wasm

import (
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestLocalReplyThroughChain checks which plugins see another plugin's
// local reply on the response side. As in Envoy, the reply passes the
// response callbacks of every filter of the chain, but a plugin whose
// stream context was never created (the request stopped before it) is
// not called: the abi010 plugin marks every response it sees with
// x-abi010.
func TestLocalReplyThroughChain(t *testing.T) {
	backend := startEcho(t, "backend")
	audit := func() *hcmv3.HttpFilter { return wasmFilter(t, pluginConf(t, "audit", "audit")) }
	marker := func() *hcmv3.HttpFilter { return wasmFilter(t, pluginConf(t, "abi010", "old-style")) }
	for _, c := range []struct {
		name    string
		filters []*hcmv3.HttpFilter
		marked  string
	}{
		{"the plugin before the one answering sees the reply", []*hcmv3.HttpFilter{marker(), audit()}, "yes"},
		{"the plugin after the one answering is not called", []*hcmv3.HttpFilter{audit(), marker()}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := startGateway(t, c.filters, hcmtest.StaticCluster("backend", backend.Addr()))
			before := backend.Requests()
			r := do(t, "GET", g.url+"/", "", "x-abi", "local")
			if r.status != 418 || backend.Requests() != before {
				t.Fatalf("got %d, backend reached %d times, want the plugin's 418 alone", r.status, backend.Requests()-before)
			}
			if got := r.header.Get("X-Abi010"); got != c.marked {
				t.Errorf("x-abi010 = %q, want %q", got, c.marked)
			}
		})
	}
}
