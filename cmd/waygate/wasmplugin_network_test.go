package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// networkPluginConfig is a TCP Gateway server routed to a raw echo
// backend, with a NETWORK WasmPlugin built from the Wasm host's TCP
// test plugin.
const networkPluginConfig = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: tcp
  namespace: default
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: %[1]d, name: tcp, protocol: TCP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: tcp-echo
  namespace: default
spec:
  hosts: [tcp-echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 9000, name: tcp, protocol: TCP}
  endpoints:
  - address: 127.0.0.1
    ports: {tcp: %[2]d}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: tcp-echo
  namespace: default
spec:
  hosts: ["*"]
  gateways: [tcp]
  tcp:
  - route:
    - destination: {host: tcp-echo.default.svc.cluster.local, port: {number: 9000}}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: tcp-plugin
  namespace: istio-system
spec:
  url: file://%[3]s
  type: NETWORK
`

// buildNetworkPlugin compiles the Wasm host's TCP test plugin.
func buildNetworkPlugin(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "network.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = filepath.Join("..", "..", "filters", "wasm", "testdata", "network")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-mod=mod -buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the network test plugin: %v\n%s", err, b)
	}
	return out
}

// startRawEchoBackend writes back every byte it reads.
func startRawEchoBackend(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestRunNetworkWasmPlugin runs a NETWORK WasmPlugin on `waygate run`:
// the control plane puts it before the tcp_proxy of the TCP port as a
// filter configured through ECDS, and the plugin sees and rewrites the
// connection's data.
func TestRunNetworkWasmPlugin(t *testing.T) {
	module := buildNetworkPlugin(t)
	echo := startRawEchoBackend(t)
	port := freePort(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(networkPluginConfig, port, echo, module)
	if err := os.WriteFile(filepath.Join(dir, "gateway.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	stdout, stderr := startRun(t, "--config", dir, "--admin", admin, "--access-log", "")
	waitFor(t, func() bool { return strings.Contains(stdout.String(), "waygate is serving") })

	line := func(send string) (string, error) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte(send)); err != nil {
			return "", err
		}
		return bufio.NewReader(c).ReadString('\n')
	}
	if got, err := line("hello\n"); err != nil || got != "hello\n" {
		t.Fatalf("echo through the plugin = %q, %v", got, err)
	}
	// WHO makes the plugin replace the data with what it knows of the
	// connection: proof it runs in the TCP chain, before tcp_proxy.
	got, err := line("WHO\n")
	if err != nil || !strings.Contains(got, "cluster=outbound|9000||tcp-echo.default.svc.cluster.local") {
		t.Errorf("WHO through the plugin = %q, %v\nstderr:\n%s", got, err, stderr.String())
	}
	// QUIT makes it close the connection without passing the data on.
	if got, err := line("QUIT\n"); err == nil {
		t.Errorf("QUIT: got %q, want the connection closed by the plugin", got)
	}
}
