package wasm

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestBodyStreamsWhileResponding streams a request body slowly to an
// upstream that answers at once: the plugin's response callbacks run
// while its request body callbacks still may (on the goroutine sending
// the body upstream), and the exchange completes with both.
func TestBodyStreamsWhileResponding(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		fmt.Fprint(w, "early")
		w.(http.Flusher).Flush()
		io.Copy(io.Discard, r.Body)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "faults", ""))},
		hcmtest.StaticCluster("backend", ln.Addr().String()))
	for range 3 {
		pr, pw := io.Pipe()
		go func() {
			for i := range 10 {
				fmt.Fprintf(pw, "chunk %d\n", i)
				time.Sleep(5 * time.Millisecond)
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", g.url+"/", pr)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "early" || resp.Header.Get("X-Served-By") != "wasm" {
			t.Fatalf("got %d %q %v", resp.StatusCode, b, resp.Header)
		}
	}
}
