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

	"github.com/waygate/waygate/conformance/backend"
)

// The WasmPlugin tests of `waygate run` share one shape: build a guest
// from filters/wasm/testdata, write the echo gateway plus a WasmPlugin to
// a config folder, start the gateway, then watch requests, /stats and
// the ECDS NACKs of /config_dump. These are the steps they share, so
// that each test keeps only what it asserts.

// buildWasmGuest compiles the guest in filters/wasm/testdata/<name> with
// standard Go for wasip1, as a plugin author would, into <name>.wasm;
// goflags are the go command's GOFLAGS for that build.
func buildWasmGuest(t *testing.T, name, goflags string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = filepath.Join("..", "..", "filters", "wasm", "testdata", name)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS="+goflags)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the %s test guest: %v\n%s", name, err, b)
	}
	return out
}

// buildTestPlugin compiles the Wasm host's Proxy-Wasm test plugin (see
// filters/wasm/testdata/examples).
func buildTestPlugin(t *testing.T) string {
	t.Helper()
	return buildWasmGuest(t, "examples", "-mod=mod -buildvcs=false")
}

// buildNetworkPlugin compiles the Wasm host's TCP test plugin (see
// filters/wasm/testdata/network).
func buildNetworkPlugin(t *testing.T) string {
	t.Helper()
	return buildWasmGuest(t, "network", "-mod=mod -buildvcs=false")
}

// tcpPort is the port of a host:port address.
func tcpPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var port int
	if _, err := fmt.Sscan(p, &port); err != nil {
		t.Fatalf("port of %q: %v", addr, err)
	}
	return port
}

// echoBackendPort starts the echo backend the echoGateway config routes
// to and returns its port.
func echoBackendPort(t *testing.T) int {
	t.Helper()
	return tcpPort(t, startBackend(t, "echo", "v1").Addr())
}

// startTCPByteEcho starts a backend writing back every byte it reads.
func startTCPByteEcho(t *testing.T) string {
	t.Helper()
	s, err := backend.StartByteEcho("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Addr()
}

// writeGatewayConfig writes cfg as dir/gateway.yaml: written then
// renamed, so the watcher of a running gateway never reads half a file.
func writeGatewayConfig(t *testing.T, dir, cfg string) {
	t.Helper()
	tmp := filepath.Join(dir, ".gateway.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "gateway.yaml")); err != nil {
		t.Fatal(err)
	}
}

// startServingRun starts `waygate run` on the config folder dir, with
// extra environment variables env (KEY=value) and an admin server on a
// free port, and waits until it serves. It returns the admin address and
// the process's stdout and log.
func startServingRun(t *testing.T, env []string, dir string) (admin string, stdout, stderr *syncBuffer) {
	t.Helper()
	admin = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	stdout, stderr = startRunEnv(t, env, "--config", dir, "--admin", admin, "--access-log", "")
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "waygate is serving") })
	return admin, stdout, stderr
}

// remoteWasmPlugin is a WasmPlugin in istio-system named name, whose
// module is fetched from url and checked against sha256, running the
// test plugin in headers mode: it adds x-wasm: value to responses. An
// empty failStrategy leaves the field out (Istio's default, FAIL_CLOSE).
func remoteWasmPlugin(name, url, sha256, failStrategy, value string) string {
	strategy := ""
	if failStrategy != "" {
		strategy = "\n  failStrategy: " + failStrategy
	}
	return fmt.Sprintf(`---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: %s
  namespace: istio-system
spec:
  url: %s
  sha256: "%s"%s
  pluginConfig:
    mode: headers
    header: x-wasm
    value: %s
`, name, url, sha256, strategy, value)
}

// waitECDSNACK waits until the admin server's /config_dump shows an ECDS
// resource in error and returns its error_state, up to the first "}".
func waitECDSNACK(t *testing.T, client *http.Client, admin string) string {
	t.Helper()
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
	return nack
}

// eventually calls try until it reports ok, for up to 10 seconds, then
// fails the test with what, the last detail try gave, and the gateway's
// log.
func eventually(t *testing.T, what string, stderr *syncBuffer, try func() (ok bool, detail string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, detail := try()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s\nstderr:\n%s", what, detail, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statValue is the value of the counter or gauge name in the text of
// the admin server's /stats, 0 when it is not there.
func statValue(stats, name string) int {
	n := 0
	if _, rest, ok := strings.Cut(stats, name+": "); ok {
		fmt.Sscan(rest, &n)
	}
	return n
}

// testPluginModule is the compiled Proxy-Wasm test plugin's bytes, for a
// module server or registry to serve.
func testPluginModule(t *testing.T) []byte {
	t.Helper()
	module, err := os.ReadFile(buildTestPlugin(t))
	if err != nil {
		t.Fatal(err)
	}
	return module
}

// requestsAcross sends requests from 4 loops while update changes the
// plugin, until taken reports the change in service, and 100ms more. It
// returns how many requests were served and failed, and the first
// failure: a gateway that swaps plugins in place fails none.
func requestsAcross(t *testing.T, request func() error, update func(), taken func() bool) (served, failed int64, first string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var nserved, nfailed atomic.Int64
	var firstErr atomic.Value
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := request(); err != nil {
					nfailed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				nserved.Add(1)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	update()
	waitFor(t, taken)
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	first, _ = firstErr.Load().(string)
	return nserved.Load(), nfailed.Load(), first
}
