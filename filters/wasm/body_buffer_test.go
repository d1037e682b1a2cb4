package wasm

import (
	"strconv"
	"strings"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestBodyBuffering pauses every body chunk until the end of the stream
// (Envoy's StopIterationAndBuffer): the plugin is called again with
// more each time and, at end_of_stream, reads and replaces the whole
// body; past the connection manager's buffer limit (1 MiB) a request
// gets 413, and a response, whose headers went on before its body, is
// reset, as Envoy resets a stream it can no longer answer.
func TestBodyBuffering(t *testing.T) {
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "audit", "audit"))},
		hcmtest.StaticCluster("body", startBodyEcho(t)))
	const size = 300 << 10
	for _, c := range []struct {
		name, abi string
		size      int
		status    int
	}{
		{"request", "buffer", size, 200},
		{"response", "buffer-response", size, 200},
		{"request over the limit", "buffer", 2 << 20, 413},
		{"response over the limit", "buffer-response", 2 << 20, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := try("POST", g.url+"/", strings.Repeat("b", c.size), "host", "body", "x-abi", c.abi)
			if c.status == 0 {
				if err == nil {
					t.Errorf("got %d with %d bytes, want the stream reset", r.status, len(r.body))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.status != c.status {
				t.Fatalf("status %d %.100q, want %d", r.status, r.body, c.status)
			}
			if c.status != 200 {
				return
			}
			// callbacks, size at the end, bytes read, buffer status size
			f := strings.Fields(r.body)
			n := strconv.Itoa(c.size)
			if len(f) != 4 || f[0] == "1" || f[1] != n || f[2] != n || f[3] != n {
				t.Errorf("the plugin saw %q, want several callbacks and %s bytes at the end", r.body, n)
			}
		})
	}
}

// TestBodyChunks follows the SDK's http_body_chunk example: the plugin
// pauses on every chunk and reads only the new bytes each time, by
// offset into the buffered body; a body without the pattern goes on
// whole, one with it, past the first chunk, gets 403 from the plugin.
func TestBodyChunks(t *testing.T) {
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "audit", "audit"))},
		hcmtest.StaticCluster("body", startBodyEcho(t)))
	clean := strings.Repeat("0123456789", 30000)
	if r := do(t, "POST", g.url+"/", clean, "host", "body", "x-abi", "chunks"); r.status != 200 || r.body != clean {
		t.Errorf("clean body: got %d, %d bytes %.60q", r.status, len(r.body), r.body)
	}
	dirty := clean[:200000] + "pattern" + clean[200000:]
	r := do(t, "POST", g.url+"/", dirty, "host", "body", "x-abi", "chunks")
	if r.status != 403 || !strings.HasPrefix(r.body, "pattern found in chunk: ") || r.body == "pattern found in chunk: 1" {
		t.Errorf("body with the pattern: got %d %q, want 403 from a later chunk", r.status, r.body)
	}
}
