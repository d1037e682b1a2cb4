package main

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// propertiesPlugin is a WasmPlugin reading Envoy attributes into
// request headers the echo backend shows.
const propertiesPlugin = `---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: properties
  namespace: istio-system
spec:
  url: file://%s
  pluginConfig:
    mode: properties
`

// TestRunWasmPluginReadsXDSMetadata: a plugin reads the metadata the
// control plane puts on the route it generates from a VirtualService
// (istio.config, as istiod does) and the gateway listener's traffic
// direction, through xds.route_metadata and xds.listener_direction.
func TestRunWasmPluginReadsXDSMetadata(t *testing.T) {
	plugin := buildTestPlugin(t)
	port := freePort(t)
	dir := t.TempDir()
	writeGatewayConfig(t, dir, fmt.Sprintf(echoGateway, port, echoBackendPort(t))+fmt.Sprintf(propertiesPlugin, plugin))
	startServingRun(t, nil, dir)

	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/productpage", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	h := decodeEcho(t, body).Headers
	for k, want := range map[string]string{
		"x-prop-xds.route_metadata.filter_metadata.istio.config": "/apis/networking.istio.io/v1/namespaces/default/virtual-service/echo",
		"x-prop-xds.listener_direction":                          "2", // OUTBOUND, as istiod sets on gateway listeners
	} {
		if h[k] != want {
			t.Errorf("%s = %q, want %q", k, h[k], want)
		}
	}
}
