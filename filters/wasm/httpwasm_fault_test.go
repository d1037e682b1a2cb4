package wasm

import (
	"testing"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestHTTPWasmFaultIsolation crashes an http-wasm instance in each way
// a guest can, in handle_request and in handle_response, while other
// clients keep sending requests: only the faulty request suffers, with
// the plugin's fail strategy (500 or going on without the plugin); the
// crash is counted and the instance replaced.
func TestHTTPWasmFaultIsolation(t *testing.T) {
	// A small memory limit makes the memory bomb quick; its rows get a
	// long call deadline, so that only the memory limit can stop it.
	t.Setenv(EnvMemoryLimitPages, "512")
	tests := []struct {
		fault, header string
		open          bool
		status        int
		timeout       time.Duration
	}{
		{"trap", "x-fault", false, 500, 0},
		{"panic", "x-fault", false, 500, 0},
		{"loop", "x-fault", false, 500, 0},
		{"oom", "x-fault", false, 500, 5 * time.Second},
		{"trap", "x-fault", true, 200, 0},
		{"panic", "x-fault", true, 200, 0},
		{"loop", "x-fault", true, 200, 0},
		{"oom", "x-fault", true, 200, 5 * time.Second},
		{"panic", "x-fault-response", false, 500, 0},
		{"loop", "x-fault-response", false, 500, 0},
		{"trap", "x-fault-response", true, 200, 0},
	}
	for _, tt := range tests {
		name := tt.header + " " + tt.fault + " fail closed"
		if tt.open {
			name = tt.header + " " + tt.fault + " fail open"
		}
		t.Run(name, func(t *testing.T) {
			if tt.timeout > 0 {
				t.Setenv(EnvCallTimeout, tt.timeout.String())
			}
			echo := startEcho(t, "backend")
			var opts []func(*wasmv3.PluginConfig)
			if tt.open {
				opts = append(opts, failOpen)
			}
			g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "httpwasm", "faults", opts...))},
				hcmtest.StaticCluster("backend", echo.Addr()))
			l := startLoop(g.url, 4)
			time.Sleep(50 * time.Millisecond)
			created := g.store.Counter("wasm.httpwasm.vm_created")
			before := created.Value()
			start := time.Now()
			r := do(t, "GET", g.url+"/", "", tt.header, tt.fault)
			if took := time.Since(start); tt.timeout > 0 && took >= tt.timeout {
				t.Errorf("the fault ended by the call deadline (%v), not by its own failure", took)
			}
			if r.status != tt.status {
				t.Errorf("faulty request: status %d %q, want %d", r.status, r.body, tt.status)
			}
			if tt.open && r.echo(t).Service != "backend" {
				t.Errorf("fail open: the faulty request did not reach the backend")
			}
			failures := g.store.Counter("wasm.httpwasm.vm_failures")
			eventually(t, "the failure counted", func() bool { return failures.Value() == 1 })
			eventually(t, "a replacement instance", func() bool { return created.Value() > before })
			time.Sleep(50 * time.Millisecond)
			l.finish(t)
			if r := do(t, "GET", g.url+"/", ""); r.header.Get("X-Served-By") != "wasm" {
				t.Errorf("after the fault: %d %v", r.status, r.header)
			}
		})
	}
}
