package wasm

import (
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

func init() {
	testPlugins = append(testPlugins, struct {
		name, dir string
		reactor   bool
	}{"abi010", "abi010", true})
}

// TestABI010Plugin runs a plugin of ABI 0.1.0 as the oldest SDKs build
// them: marked proxy_abi_version_0_1_0, allocating through malloc, with
// header callbacks of two arguments, reading its configuration with
// proxy_get_configuration, and reading a missing header as empty.
func TestABI010Plugin(t *testing.T) {
	backend := startEcho(t, "backend")
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "abi010", "old-style"))},
		hcmtest.StaticCluster("backend", backend.Addr()))
	r := do(t, "GET", g.url+"/", "")
	if r.status != 200 || r.header.Get("X-Abi010") != "yes" {
		t.Fatalf("got %d %v", r.status, r.header)
	}
	e := r.echo(t)
	if got := e.Headers["x-abi010-config"]; got != "old-style" {
		t.Errorf("upstream got x-abi010-config %q, want the plugin configuration", got)
	}
	if got := e.Headers["x-missing-status"]; got != "0 0" {
		t.Errorf("a missing header read with status and length %q, want OK and empty (\"0 0\")", got)
	}
}
