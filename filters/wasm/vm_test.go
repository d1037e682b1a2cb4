package wasm

import (
	"context"
	"strings"
	"testing"

	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

func rootID(id string) func(*wasmv3.PluginConfig) {
	return func(pc *wasmv3.PluginConfig) { pc.RootId, pc.Name = id, id }
}

// TestPluginsShareVM runs two filters of one chain built from the same
// module with different root_ids and configurations. With the same
// vm_config they run in the same instances, as Envoy loads them into one
// VM: the plugin's request counter, global to the VM, counts the
// requests of both, and each plugin reads its own configuration and
// root_id. With different vm_ids each has its own instances and counter.
func TestPluginsShareVM(t *testing.T) {
	t.Setenv(EnvPoolSize, "1")
	for _, c := range []struct {
		name     string
		betaVM   string
		requests []string // x-vm-requests of two requests
	}{
		{"same vm", "shared", []string{"1, 2", "3, 4"}},
		{"other vm", "other", []string{"1, 1", "2, 2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			backend := startEcho(t, "backend")
			alpha := pluginConf(t, "rawabi", "mode=count value=A", rootID("alpha"), vmID("shared_"+runName(t)))
			beta := pluginConf(t, "rawabi", "mode=count value=B", rootID("beta"), vmID(c.betaVM+"_"+runName(t)))
			g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, alpha), wasmFilter(t, beta)},
				hcmtest.StaticCluster("backend", backend.Addr()))
			for i, want := range c.requests {
				e := do(t, "GET", g.url+"/", "").echo(t)
				if got := e.Headers["x-vm-requests"]; got != want {
					t.Errorf("request %d: x-vm-requests %q, want %q", i, got, want)
				}
				if a, b := e.Headers["x-alpha-config"], e.Headers["x-beta-config"]; a != "A" || b != "B" {
					t.Errorf("request %d: configurations seen alpha=%q beta=%q, want A and B", i, a, b)
				}
			}
		})
	}
}

// TestPluginJoinsVM loads a second plugin into a VM whose instance is
// running: its root context starts there with its own configuration; a
// third one refusing its configuration is refused alone, with the
// plugin's reason, and the others serve on in the same instance; the
// first one, unloaded, leaves the instance to the second.
func TestPluginJoinsVM(t *testing.T) {
	env := envForTest(t)
	o := Options{PoolSize: 1, CloseDelay: -1}
	vm := vmID("joined_" + runName(t))
	a := newFactoryEnv(t, pluginConf(t, "rawabi", "mode=count value=A", rootID("alpha"), vm), env, o)
	headers := func(f *Factory) map[string]string {
		t.Helper()
		x := exchange()
		fl := f.NewFilter(x).(*filter)
		defer fl.OnDone(x)
		fl.OnRequestHeaders(x, true)
		return map[string]string{"count": x.Request.Header.Get("X-Vm-Requests"),
			"alpha": x.Request.Header.Get("X-Alpha-Config"), "beta": x.Request.Header.Get("X-Beta-Config")}
	}
	if h := headers(a); h["count"] != "1" || h["alpha"] != "A" {
		t.Fatalf("first plugin: %v", h)
	}
	b := newFactoryEnv(t, pluginConf(t, "rawabi", "mode=count value=B", rootID("beta"), vm), env, o)
	if a.pool != b.pool {
		t.Fatal("plugins of one vm_config run in two pools")
	}
	if h := headers(b); h["count"] != "2" || h["beta"] != "B" || h["alpha"] != "" {
		t.Errorf("second plugin: %v, want count 2 and its own configuration", h)
	}
	_, err := New(context.Background(), pluginConf(t, "rawabi", "mode=count fail=configure", rootID("gamma"), vm), env, o)
	if err == nil || !strings.Contains(err.Error(), "proxy_on_configure failed: configuration refused") {
		t.Fatalf("refused configuration: err = %v", err)
	}
	if h := headers(a); h["count"] != "3" || h["alpha"] != "A" {
		t.Errorf("first plugin after a third was refused: %v", h)
	}

	// Unloading the first plugin ends its root context; the second
	// serves on in the same instance, whose state carries over.
	v := a.pool.inst.at(0)
	a.Close()
	eventually(t, "the unloaded plugin's root context to end", func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.roots[a.plugin] == nil
	})
	if h := headers(b); h["count"] != "4" || h["beta"] != "B" {
		t.Errorf("second plugin after the first was unloaded: %v", h)
	}
	if b.pool.inst.at(0) != v {
		t.Error("unloading a plugin replaced its VM's instance")
	}
}

func newFactoryEnv(t *testing.T, pb *wasmfilterv3.Wasm, env filters.Env, o Options) *Factory {
	t.Helper()
	f, err := New(context.Background(), pb, env, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestPluginCallbacksReachTheirRoot loads two plugins into one VM: the
// first ticks, the second makes a gRPC call. Each root context gets
// its own callbacks: the ticks reach the first plugin only, the call's
// answer the second one's root context.
func TestPluginCallbacksReachTheirRoot(t *testing.T) {
	srv := startEchoServer(t)
	// A pointer: plugins share a pool only in one gateway, whose
	// upstream compares equal.
	env := filters.Env{Log: testLog(t), Upstream: &struct{ clusterDialer }{clusterDialer{"echo": srv.addr}}}
	o := Options{PoolSize: 1}
	vm := vmID("callbacks_" + runName(t))
	ticker := newFactoryEnv(t, pluginConf(t, "rawabi", "mode=count value=T tick=5", rootID("ticker"), vm), env, o)
	caller := newFactoryEnv(t, pluginConf(t, "rawabi", "mode=grpc-unary upstream=echo", rootID("caller"), vm), env, o)
	if ticker.pool != caller.pool {
		t.Fatal("plugins of one vm_config run in two pools")
	}
	body, _ := requestHeaders(t, caller, "X-Msg", "hi")
	if want := "receive echo:hi md=from-plugin svc= root=caller"; body != want {
		t.Errorf("gRPC answer: %q, want %q", body, want)
	}
	eventually(t, "ticks on the ticking plugin's root context", func() bool {
		_, h := requestHeaders(t, ticker)
		return h.Get("X-Ticker-Ticks") != "0"
	})
	v := caller.pool.inst.at(0)
	v.mu.Lock()
	defer v.mu.Unlock()
	if r := v.roots[caller.plugin]; r == nil || r.tickStop != nil {
		t.Errorf("the calling plugin's root context ticks: %+v", r)
	}
}
