package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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

// buildTestPlugin compiles the Wasm host's test plugin with standard Go
// for wasip1, as a Proxy-Wasm plugin author would.
func buildTestPlugin(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "examples.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = filepath.Join("..", "..", "filters", "wasm", "testdata", "examples")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-mod=mod -buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the test plugin: %v\n%s", err, b)
	}
	return out
}

// TestRunWasmPlugin runs WasmPlugins on `waygate run`: the plugins
// istiod would put in the gateway's chain change requests and responses
// and export their metrics; a new pluginConfig is applied without a
// restart and without failing a request in flight.
func TestRunWasmPlugin(t *testing.T) {
	plugin := buildTestPlugin(t)
	b := startBackend(t, "echo", "v1")
	_, bp, _ := net.SplitHostPort(b.Addr())
	var backendPort int
	fmt.Sscan(bp, &backendPort)
	port := freePort(t)
	dir := t.TempDir()
	write := func(value string) {
		t.Helper()
		cfg := fmt.Sprintf(echoGateway, port, backendPort) + fmt.Sprintf(wasmPlugins, plugin, value)
		// Write then rename, so the watcher never reads half a file.
		tmp := filepath.Join(dir, ".gateway.yaml.tmp")
		if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "gateway.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	write("one")
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	stdout, _ := startRun(t, "--config", dir, "--admin", admin, "--access-log", "")
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "waygate is serving") })

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
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var served, failed atomic.Int64
	var firstErr atomic.Value
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, _, err := get()
				switch {
				case err != nil:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				case resp.StatusCode != 200 || (resp.Header.Get("X-Wasm") != "one" && resp.Header.Get("X-Wasm") != "two"):
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %v", resp.StatusCode, resp.Header))
				default:
					served.Add(1)
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	write("two")
	waitFor(t, func() bool {
		resp, _, err := get()
		return err == nil && resp.Header.Get("X-Wasm") == "two"
	})
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed across the plugin update; first: %v", n, n+served.Load(), firstErr.Load())
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
