package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
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

// remotePlugin is a WasmPlugin whose module comes from an https:// url
// with its sha256, adding x-wasm: value to responses.
const remotePlugin = `---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: remote
  namespace: istio-system
spec:
  url: %s
  sha256: "%s"
  pluginConfig:
    mode: headers
    header: x-wasm
    value: %s
`

// TestRunWasmPluginFromHTTPS runs a WasmPlugin whose url is https://,
// served by a loopback TLS server, on `waygate run`: the control plane
// sends it as istiod does (remote http_uri, sha256) through ECDS, the
// gateway fetches and checks the module and runs it; a later version
// whose sha256 does not match is refused and the running plugin keeps
// serving.
func TestRunWasmPluginFromHTTPS(t *testing.T) {
	module, err := os.ReadFile(buildTestPlugin(t))
	if err != nil {
		t.Fatal(err)
	}
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

	b := startBackend(t, "echo", "v1")
	_, bp, _ := net.SplitHostPort(b.Addr())
	var backendPort int
	fmt.Sscan(bp, &backendPort)
	port := freePort(t)
	dir := t.TempDir()
	url := srv.URL + "/plugins/headers.wasm"
	write := func(sha, value string) {
		t.Helper()
		cfg := fmt.Sprintf(echoGateway, port, backendPort) + fmt.Sprintf(remotePlugin, url, sha, value)
		tmp := filepath.Join(dir, ".gateway.yaml.tmp")
		if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "gateway.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	write(hex.EncodeToString(sum[:]), "remote")
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// The gateway trusts the test server's certificate as it would a
	// registry's: through the system roots.
	stdout, _ := startRunEnv(t, []string{"SSL_CERT_FILE=" + ca}, "--config", dir, "--admin", admin, "--access-log", "")
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "waygate is serving") })

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
	if !strings.Contains(nack, "trafficextension/istio-system.remote") || !strings.Contains(nack, "sha256") {
		t.Errorf("the ECDS NACK should name the resource and the sha256: %s", nack)
	}
	if got := header(); got != "remote" {
		t.Errorf("after a refused module: x-wasm = %q, want the running plugin's remote", got)
	}
}
