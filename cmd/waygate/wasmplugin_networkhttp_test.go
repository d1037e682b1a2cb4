package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// networkPluginOnHTTP is a NETWORK WasmPlugin built from the Wasm host's
// TCP test plugin, for the Gateway's HTTP port.
const networkPluginOnHTTP = `---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: conn-plugin
  namespace: istio-system
spec:
  url: file://%s
  type: NETWORK
  phase: AUTHN
`

// TestRunNetworkWasmPluginOnHTTPPort runs a NETWORK WasmPlugin on the
// HTTP port of `waygate run`: as istiod does, the control plane puts it
// before the HTTP connection manager, so it sees the bytes of every
// request and response on the connection and may close it before any
// request reaches the router.
func TestRunNetworkWasmPluginOnHTTPPort(t *testing.T) {
	module := buildNetworkPlugin(t)
	backendPort := echoBackendPort(t)
	port := freePort(t)
	dir := t.TempDir()
	writeGatewayConfig(t, dir, fmt.Sprintf(echoGateway, port, backendPort)+fmt.Sprintf(networkPluginOnHTTP, module))
	admin, stdout, stderr := startServingRun(t, nil, dir)

	// A request goes through the plugin and the connection manager to
	// the backend.
	client := &http.Client{Timeout: 5 * time.Second}
	resp, body := get(t, client, fmt.Sprintf("http://127.0.0.1:%d/through", port), nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "/through") {
		t.Fatalf("GET through the plugin: %d %s\nstderr:\n%s", resp.StatusCode, body, stderr.String())
	}

	// The plugin counted the connection's bytes both ways: the request
	// it read going up, the response the manager wrote coming back.
	_, stats := get(t, client, "http://"+admin+"/stats", nil)
	for _, name := range []string{"wasmcustom.tcp_downstream_bytes", "wasmcustom.tcp_upstream_bytes"} {
		if n := statValue(string(stats), name); n == 0 {
			t.Errorf("/stats %s: %d; want the plugin's count of the HTTP bytes:\n%s", name, n, grepLines(string(stats), "wasm"))
		}
	}

	// A request whose bytes hold the plugin's QUIT marker: the plugin
	// closes the connection, and no answer comes.
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /QUIT HTTP/1.1\r\nHost: echo\r\n\r\n")
	if line, err := bufio.NewReader(c).ReadString('\n'); line != "" || err != io.EOF {
		t.Errorf("after QUIT read %q, %v; want the connection closed by the plugin", line, err)
	}

	// The connection's properties in the plugin's log show it ran on
	// the HTTP listener's connection.
	if !strings.Contains(stdout.String()+stderr.String(), "new connection") {
		t.Errorf("the plugin logged no connection:\n%s", stderr.String())
	}
}
