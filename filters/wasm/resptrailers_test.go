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

// TestRequestTrailersUpstream checks that the request trailers reach the
// upstream with what proxy_on_request_trailers added: the audit plugin
// adds x-rt-added, and the backend answers with what it got.
func TestRequestTrailersUpstream(t *testing.T) {
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "audit", "audit"))},
		hcmtest.StaticCluster("body", startTrailerBackend(t)))
	pr, pw := io.Pipe()
	go func() { io.WriteString(pw, "chunk"); pw.Close() }()
	req, _ := http.NewRequest("POST", g.url+"/", pr)
	req.Host = "body"
	req.Trailer = http.Header{"X-Rt": {"tv"}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got, added := resp.Header.Get("X-Got-Rt"), resp.Header.Get("X-Got-Rt-Added"); got != "tv" || added != "yes" {
		t.Errorf("upstream got trailers x-rt %q, x-rt-added %q, want tv and yes", got, added)
	}
}
