package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	plugin := filepath.Join(t.TempDir(), "httpwasm.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", plugin, ".")
	cmd.Dir = filepath.Join("..", "..", "filters", "wasm", "testdata", "httpwasm")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the http-wasm guest: %v\n%s", err, b)
	}
	b := startBackend(t, "echo", "v1")
	_, bp, _ := net.SplitHostPort(b.Addr())
	var backendPort int
	fmt.Sscan(bp, &backendPort)
	port := freePort(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(echoGateway, port, backendPort) + fmt.Sprintf(httpWasmPlugin, plugin)
	if err := os.WriteFile(filepath.Join(dir, "gateway.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _ := startRun(t, "--config", dir, "--admin", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--access-log", "")
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "waygate is serving") })

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
