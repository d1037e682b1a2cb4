package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunWasmPluginFromHTTPS runs a WasmPlugin whose url is https://,
// served by a loopback TLS server, on `waygate run`: the control plane
// sends it as istiod does (remote http_uri, sha256) through ECDS, the
// gateway fetches and checks the module and runs it; a later version
// whose sha256 does not match is refused and the running plugin keeps
// serving.
func TestRunWasmPluginFromHTTPS(t *testing.T) {
	module := testPluginModule(t)
	sum := sha256.Sum256(module)
	var fetches atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/plugins/headers.wasm" {
			http.NotFound(w, r)
			return
		}
		fetches.Add(1)
		w.Write(module)
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}

	backendPort := echoBackendPort(t)
	port := freePort(t)
	dir := t.TempDir()
	url := srv.URL + "/plugins/headers.wasm"
	write := func(sha, value string) {
		t.Helper()
		writeGatewayConfig(t, dir, fmt.Sprintf(echoGateway, port, backendPort)+remoteWasmPlugin("remote", url, sha, "", value))
	}
	write(hex.EncodeToString(sum[:]), "remote")
	// The gateway trusts the test server's certificate as it would a
	// registry's: through the system roots.
	admin, _, _ := startServingRun(t, []string{"SSL_CERT_FILE=" + ca}, dir)

	client := &http.Client{Timeout: 5 * time.Second}
	header := func() string {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("X-Wasm")
	}
	if got := header(); got != "remote" {
		t.Fatalf("x-wasm = %q, want the remote plugin's", got)
	}
	if fetches.Load() == 0 {
		t.Error("the module was not fetched from the https server")
	}

	// A sha256 that does not match: the ECDS update is refused and the
	// plugin in service keeps its config.
	write(strings.Repeat("0", 64), "mismatch")
	nack := waitECDSNACK(t, client, admin)
	if !strings.Contains(nack, "trafficextension/istio-system.remote") || !strings.Contains(nack, "sha256") {
		t.Errorf("the ECDS NACK should name the resource and the sha256: %s", nack)
	}
	if got := header(); got != "remote" {
		t.Errorf("after a refused module: x-wasm = %q, want the running plugin's remote", got)
	}
}
