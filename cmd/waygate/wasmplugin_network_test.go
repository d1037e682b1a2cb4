package main

import (
	"bufio"
	"fmt"
	"net"
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

// TestRunNetworkWasmPlugin runs a NETWORK WasmPlugin on `waygate run`:
// the control plane puts it before the tcp_proxy of the TCP port as a
// filter configured through ECDS, and the plugin sees and rewrites the
// connection's data.
func TestRunNetworkWasmPlugin(t *testing.T) {
	module := buildNetworkPlugin(t)
	echo := tcpPort(t, startTCPByteEcho(t))
	port := freePort(t)
	dir := t.TempDir()
	writeGatewayConfig(t, dir, fmt.Sprintf(networkPluginConfig, port, echo, module))
	_, _, stderr := startServingRun(t, nil, dir)

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
