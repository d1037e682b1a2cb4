package wasm

import (
	"io"
	"net/http"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestResponseTrailers checks proxy_on_response_trailers: the raw-ABI
// audit plugin rewrites the upstream's x-st trailer and adds one with
// the count of trailers it was given, and the client gets both.
func TestResponseTrailers(t *testing.T) {
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "audit", "audit"))},
		hcmtest.StaticCluster("body", startTrailerBackend(t)))
	req, _ := http.NewRequest("GET", g.url+"/", nil)
	req.Host = "body"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(b) != "body" {
		t.Fatalf("got %d %q %v, want 200 body", resp.StatusCode, b, err)
	}
	if got := resp.Trailer.Get("X-St"); got != "changed-orig" {
		t.Errorf("x-st trailer = %q, want changed-orig (trailers %v)", got, resp.Trailer)
	}
	if got := resp.Trailer.Get("X-Trailer-Calls"); got != "1" {
		t.Errorf("x-trailer-calls trailer = %q, want 1", got)
	}
}
