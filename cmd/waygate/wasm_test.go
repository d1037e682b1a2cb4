package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// wasmPlugins are two WasmPlugins for the echo gateway, both built from
// the Wasm host's test plugin: one adding a response header (its value
// from pluginConfig) before authorization, one counting a request
// header's values in a plugin metric.
const wasmPlugins = `---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: add-header
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: ingressgateway
  url: file://%[1]s
  phase: AUTHZ
  pluginConfig:
    mode: headers
    header: x-wasm
    value: %[2]s
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: metrics
  namespace: istio-system
spec:
  url: file://%[1]s
  phase: STATS
  failStrategy: FAIL_OPEN
  pluginConfig:
    mode: metrics
`

// TestRunWasmPlugin runs WasmPlugins on `waygate run`: the plugins
// istiod would put in the gateway's chain change requests and responses
// and export their metrics; a new pluginConfig is applied without a
// restart and without failing a request in flight.
func TestRunWasmPlugin(t *testing.T) {
	plugin := buildTestPlugin(t)
	backendPort := echoBackendPort(t)
	port := freePort(t)
	dir := t.TempDir()
	write := func(value string) {
		t.Helper()
		writeGatewayConfig(t, dir, fmt.Sprintf(echoGateway, port, backendPort)+fmt.Sprintf(wasmPlugins, plugin, value))
	}
	write("one")
	admin, _, _ := startServingRun(t, nil, dir)

	client := &http.Client{Timeout: 5 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/productpage", port)
	get := func(hdr ...string) (*http.Response, string, error) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, string(body), err
	}

	resp, body, err := get("my-custom-header", "foo")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("X-Wasm") != "one" || resp.Header.Get("X-Proxy-Wasm-Go-Sdk-Example") != "http_headers" {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
	}
	e := decodeEcho(t, []byte(body))
	if e.Headers["test"] != "best" || e.Headers["x-count"] != "1" {
		t.Errorf("backend saw test=%q x-count=%q", e.Headers["test"], e.Headers["x-count"])
	}

	prom := func() string {
		r, err := client.Get("http://" + admin + "/stats/prometheus")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}
	if p := prom(); !strings.Contains(p, "custom_header_value_counts_value_foo_reporter_wasmgosdk 1") {
		t.Errorf("/stats/prometheus lacks the plugin's counter:\n%s", grepLines(p, "custom_header|wasm"))
	}

	// A new pluginConfig while requests flow: every request is served,
	// by the old plugin or the new one, and the new one takes over.
	served, failed, first := requestsAcross(t, func() error {
		resp, _, err := get()
		switch {
		case err != nil:
			return err
		case resp.StatusCode != 200 || (resp.Header.Get("X-Wasm") != "one" && resp.Header.Get("X-Wasm") != "two"):
			return fmt.Errorf("%d %v", resp.StatusCode, resp.Header)
		}
		return nil
	}, func() { write("two") }, func() bool {
		resp, _, err := get()
		return err == nil && resp.Header.Get("X-Wasm") == "two"
	})
	if failed > 0 {
		t.Errorf("%d of %d requests failed across the plugin update; first: %v", failed, failed+served, first)
	}
	var stats string
	waitFor(t, func() bool {
		r, err := client.Get("http://" + admin + "/stats?filter=^wasm")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		stats = string(b)
		return strings.Contains(stats, "wasm.istio-system.add-header.vm_created")
	})
	if strings.Contains(stats, "vm_failures: 1") {
		t.Errorf("a plugin instance failed:\n%s", stats)
	}
}

// grepLines keeps the lines of s matching any of the |-separated words.
func grepLines(s, words string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, w := range strings.Split(words, "|") {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
