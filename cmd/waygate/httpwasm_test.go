package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// httpWasmPlugin is a WasmPlugin loading an http-wasm guest (the ABI of
// Traefik's plugins): the same resource as for a Proxy-Wasm plugin, the
// gateway telling the ABI from the module.
const httpWasmPlugin = `---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: http-wasm
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: ingressgateway
  url: file://%s
  phase: AUTHN
  pluginConfig:
    mode: features
`

// TestRunHTTPWasmPlugin runs an http-wasm guest as a WasmPlugin on
// `waygate run`: it answers some requests itself, rewrites the
// responses of others after buffering them, and passes the rest on.
func TestRunHTTPWasmPlugin(t *testing.T) {
	plugin := buildWasmGuest(t, "httpwasm", "-buildvcs=false")
	backendPort := echoBackendPort(t)
	port := freePort(t)
	dir := t.TempDir()
	writeGatewayConfig(t, dir, fmt.Sprintf(echoGateway, port, backendPort)+fmt.Sprintf(httpWasmPlugin, plugin))
	startServingRun(t, nil, dir)

	client := &http.Client{Timeout: 5 * time.Second}
	tests := []struct {
		test   string
		status int
		check  func(t *testing.T, h http.Header, body string)
	}{
		{"local", 401, func(t *testing.T, h http.Header, body string) {
			if body != "denied" || h.Get("Www-Authenticate") != `Basic realm="test"` {
				t.Errorf("got %q %v", body, h)
			}
		}},
		{"bufresp", 203, func(t *testing.T, h http.Header, body string) {
			if !strings.Contains(body, `"SERVICE": "ECHO"`) {
				t.Errorf("body %q is not the upper-cased echo", body)
			}
		}},
		{"pass", 200, func(t *testing.T, h http.Header, body string) {
			if e := decodeEcho(t, []byte(body)); e.Headers["x-test"] != "pass" {
				t.Errorf("backend saw x-test=%q", e.Headers["x-test"])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.test, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/productpage", port), nil)
			req.Header.Set("x-test", tt.test)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			tt.check(t, resp.Header, string(body))
		})
	}
}
