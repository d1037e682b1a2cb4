package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunWasmPluginNotFetched runs `waygate run` with a WasmPlugin whose
// module server answers 404 at first. As istio-agent does, the gateway
// serves the plugin's filter with a stand-in rather than leave the
// listener waiting: deny-all for FAIL_CLOSE (403 "RBAC: access denied"),
// allow-all for FAIL_OPEN, logged and counted; the next push fetches
// again and the plugin takes over once the module is there. A later
// version that cannot be fetched is refused, and the plugin in service
// keeps serving.
func TestRunWasmPluginNotFetched(t *testing.T) {
	module := testPluginModule(t)
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

	backendPort := echoBackendPort(t)
	port := freePort(t)
	dir := t.TempDir()
	url := srv.URL + "/plugins/headers.wasm"
	write := func(url, strategy, value string) {
		t.Helper()
		writeGatewayConfig(t, dir, fmt.Sprintf(echoGateway, port, backendPort)+remoteWasmPlugin("remote", url, sha, strategy, value))
	}
	write(url, "FAIL_CLOSE", "v1")
	admin, stdout, stderr := startServingRun(t, nil, dir)

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
		eventually(t, what, stderr, func() (bool, string) {
			a := ask()
			return ok(a), fmt.Sprintf("got %d x-wasm=%q %q", a.status, a.wasm, a.body)
		})
	}
	fallbacks := func() int {
		_, body := get(t, client, "http://"+admin+"/stats", nil)
		return statValue(string(body), "wasm.remote_fetch_fallback")
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
	nack := waitECDSNACK(t, client, admin)
	if !strings.Contains(nack, "trafficextension/istio-system.remote") || !strings.Contains(nack, "404") {
		t.Errorf("the ECDS NACK should name the resource and the fetch's failure: %s", nack)
	}
	if a := ask(); a.status != 200 || a.wasm != "v2" {
		t.Errorf("after a version not fetched: %d x-wasm=%q, want the plugin in service (v2)", a.status, a.wasm)
	}
}
