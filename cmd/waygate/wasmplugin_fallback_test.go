package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fallbackPlugin is a WasmPlugin fetched from an http:// url, adding
// x-wasm: value to responses, with a fail strategy.
const fallbackPlugin = `---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: remote
  namespace: istio-system
spec:
  url: %s
  sha256: "%s"
  failStrategy: %s
  pluginConfig:
    mode: headers
    header: x-wasm
    value: %s
`

// TestRunWasmPluginNotFetched runs `waygate run` with a WasmPlugin whose
// module server answers 404 at first. As istio-agent does, the gateway
// serves the plugin's filter with a stand-in rather than leave the
// listener waiting: deny-all for FAIL_CLOSE (403 "RBAC: access denied"),
// allow-all for FAIL_OPEN, logged and counted; the next push fetches
// again and the plugin takes over once the module is there. A later
// version that cannot be fetched is refused, and the plugin in service
// keeps serving.
func TestRunWasmPluginNotFetched(t *testing.T) {
	module, err := os.ReadFile(buildTestPlugin(t))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(module)
	sha := hex.EncodeToString(sum[:])
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/plugins/headers.wasm" || !ready.Load() {
			http.NotFound(w, r)
			return
		}
		w.Write(module)
	}))
	t.Cleanup(srv.Close)

	b := startBackend(t, "echo", "v1")
	_, bp, _ := net.SplitHostPort(b.Addr())
	var backendPort int
	fmt.Sscan(bp, &backendPort)
	port := freePort(t)
	dir := t.TempDir()
	url := srv.URL + "/plugins/headers.wasm"
	write := func(url, strategy, value string) {
		t.Helper()
		cfg := fmt.Sprintf(echoGateway, port, backendPort) + fmt.Sprintf(fallbackPlugin, url, sha, strategy, value)
		tmp := filepath.Join(dir, ".gateway.yaml.tmp")
		if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "gateway.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	write(url, "FAIL_CLOSE", "v1")
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	stdout, stderr := startRun(t, "--config", dir, "--admin", admin, "--access-log", "")
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "waygate is serving") })

	client := &http.Client{Timeout: 5 * time.Second}
	type answer struct {
		status int
		wasm   string
		body   string
	}
	ask := func() answer {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return answer{}
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header.Get("X-Wasm"), string(b)}
	}
	expect := func(what string, ok func(answer) bool) {
		t.Helper()
		var a answer
		deadline := time.Now().Add(10 * time.Second)
		for {
			if a = ask(); ok(a) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: got %d x-wasm=%q %q\nstderr:\n%s", what, a.status, a.wasm, a.body, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	fallbacks := func() int {
		_, body := get(t, client, "http://"+admin+"/stats", nil)
		_, rest, ok := strings.Cut(string(body), "wasm.remote_fetch_fallback: ")
		n := 0
		if ok {
			fmt.Sscan(rest, &n)
		}
		return n
	}

	// FAIL_CLOSE: the listener serves, and denies as Istio's deny-all
	// RBAC filter does.
	expect("FAIL_CLOSE, module not fetched", func(a answer) bool {
		return a.status == 403 && a.body == "RBAC: access denied" && a.wasm == ""
	})
	if n := fallbacks(); n < 1 {
		t.Errorf("wasm.remote_fetch_fallback = %d, want the stand-in counted", n)
	}
	if !strings.Contains(stdout.String()+stderr.String(), "wasm module not fetched") {
		t.Errorf("the stand-in was not logged:\n%s", stderr.String())
	}

	// FAIL_OPEN: the next push fetches again, fails again, and the
	// requests go through without the plugin.
	write(url, "FAIL_OPEN", "v1")
	expect("FAIL_OPEN, module not fetched", func(a answer) bool { return a.status == 200 && a.wasm == "" })

	// The module is served now: the next push fetches it and the
	// plugin takes over.
	ready.Store(true)
	write(url, "FAIL_OPEN", "v2")
	expect("module fetched", func(a answer) bool { return a.status == 200 && a.wasm == "v2" })

	// A version whose module cannot be fetched, while a plugin serves:
	// refused, naming the resource, and the plugin keeps serving.
	write(srv.URL+"/plugins/gone.wasm", "FAIL_CLOSE", "v3")
	var nack string
	waitFor(t, func() bool {
		resp, err := client.Get("http://" + admin + "/config_dump")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		d, _ := io.ReadAll(resp.Body)
		_, nack, _ = strings.Cut(string(d), `"error_state"`)
		return nack != ""
	})
	if i := strings.Index(nack, "}"); i > 0 {
		nack = nack[:i]
	}
	if !strings.Contains(nack, "trafficextension/istio-system.remote") || !strings.Contains(nack, "404") {
		t.Errorf("the ECDS NACK should name the resource and the fetch's failure: %s", nack)
	}
	if a := ask(); a.status != 200 || a.wasm != "v2" {
		t.Errorf("after a version not fetched: %d x-wasm=%q, want the plugin in service (v2)", a.status, a.wasm)
	}
}
