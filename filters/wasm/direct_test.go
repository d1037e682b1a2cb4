package wasm

import (
	"context"
	"net/http"
	"testing"
	"time"

	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waygate/waygate/filters"
)

// newFactory builds a factory outside a chain, closed when the test ends.
func newFactory(t testing.TB, pb *wasmfilterv3.Wasm, o Options) *Factory {
	t.Helper()
	f, err := New(context.Background(), pb, envForTest(t), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func exchange(hdr ...string) *filters.Exchange {
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Add(hdr[i], hdr[i+1])
	}
	return &filters.Exchange{
		Context: context.Background(),
		Request: filters.Request{Method: "GET", Scheme: "http", Authority: "shop", Path: "/", Header: h, ContentLength: -1},
	}
}

// TestPhasesOnExchange drives the filter's phases directly, as the
// chain does, and checks what the plugin changed.
func TestPhasesOnExchange(t *testing.T) {
	f := newFactory(t, pluginConf(t, "examples", mode("headers", "header", "x-a", "value", "b")), Options{PoolSize: 1})
	x := exchange("Test", "worst")
	fl := f.NewFilter(x).(*filter)
	if st := fl.OnRequestHeaders(x, true); st != filters.Continue {
		t.Fatalf("request headers: %v", st)
	}
	if got := x.Request.Header.Values("Test"); len(got) != 1 || got[0] != "best" {
		t.Errorf("request header test = %q, want [best]", got)
	}
	x.Response = filters.Response{Status: 200, Header: http.Header{}}
	if st := fl.OnResponseHeaders(x, true); st != filters.Continue {
		t.Fatalf("response headers: %v", st)
	}
	if x.Response.Header.Get("X-A") != "b" || x.Response.Header.Get("X-Proxy-Wasm-Go-Sdk-Example") != "http_headers" {
		t.Errorf("response headers %v", x.Response.Header)
	}
	fl.OnDone(x)
	v := fl.vm
	v.mu.Lock()
	n := len(v.streams)
	v.mu.Unlock()
	if n != 0 {
		t.Errorf("%d stream contexts left after OnDone", n)
	}
}

// TestPoolPinning checks that streams spread over the pool's instances
// and each stays on its own for every phase, with context ids counted
// per instance.
func TestPoolPinning(t *testing.T) {
	f := newFactory(t, pluginConf(t, "examples", mode("noop")), Options{PoolSize: 2})
	var fls []*filter
	seen := map[*vm]bool{}
	for range 4 {
		x := exchange()
		fl := f.NewFilter(x).(*filter)
		fl.OnRequestHeaders(x, true)
		fls = append(fls, fl)
		seen[fl.vm] = true
	}
	if len(seen) != 2 {
		t.Fatalf("4 streams used %d instances, want 2", len(seen))
	}
	for _, fl := range fls {
		v := fl.vm
		x := exchange()
		x.Response = filters.Response{Status: 200, Header: http.Header{}}
		fl.OnResponseHeaders(x, true)
		if fl.vm != v {
			t.Errorf("stream %d moved between instances", fl.id)
		}
		// Root contexts take id 1 on each instance; streams follow.
		if fl.id < 2 || fl.id > 3 {
			t.Errorf("stream context id %d, want 2 or 3", fl.id)
		}
		fl.OnDone(x)
	}
}

// TestEnvironmentAndVMConfig checks environment_variables (key_values
// and host_env_keys) reach the plugin through WASI, and the VM
// configuration through proxy_on_vm_start.
func TestEnvironmentAndVMConfig(t *testing.T) {
	t.Setenv("WASM_HOST_TEST", "from-host")
	vmConf, _ := anypb.New(wrapperspb.String("vm-conf"))
	pb := pluginConf(t, "examples", mode("env"), func(pc *wasmv3.PluginConfig) {
		vc := pc.GetVmConfig()
		vc.Configuration = vmConf
		vc.EnvironmentVariables = &wasmv3.EnvironmentVariables{
			HostEnvKeys: []string{"WASM_HOST_TEST", "WASM_UNSET"},
			KeyValues:   map[string]string{"WASM_TEST": "from-config"},
		}
	})
	f := newFactory(t, pb, Options{PoolSize: 1})
	x := exchange()
	f.NewFilter(x).(*filter).OnRequestHeaders(x, true)
	for k, want := range map[string]string{"X-Env": "from-config", "X-Host-Env": "from-host", "X-Vm-Config": "vm-conf"} {
		if got := x.Request.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// TestCloseStopsInstances checks that a closed factory serves the
// streams in flight and those arriving during its close delay, then
// stops its instances, after which a stream gets the fail strategy.
func TestCloseStopsInstances(t *testing.T) {
	f, err := New(context.Background(), pluginConf(t, "examples", mode("noop")), envForTest(t), Options{PoolSize: 2, CloseDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	x := exchange()
	fl := f.NewFilter(x).(*filter)
	f.Close()
	if st := fl.OnRequestHeaders(x, true); st != filters.Continue {
		t.Errorf("stream in flight after close: %v %+v", st, x.LocalReply())
	}
	late := exchange()
	lf := f.NewFilter(late).(*filter)
	if st := lf.OnRequestHeaders(late, true); st != filters.Continue {
		t.Errorf("stream arriving on the old config: %v %+v", st, late.LocalReply())
	}
	lf.OnDone(late)
	fl.OnDone(x)
	eventually(t, "the instances to stop", func() bool {
		for i := range f.pool.inst.len() {
			if f.pool.inst.at(i) != nil {
				return false
			}
		}
		return true
	})
	x = exchange()
	fl = f.NewFilter(x).(*filter)
	if st := fl.OnRequestHeaders(x, true); st != filters.Stop || x.LocalReply() == nil || x.LocalReply().Status != 503 {
		t.Errorf("stream after the instances stopped: %v %+v", st, x.LocalReply())
	}
}

// TestPoolShared checks that factories of the same plugin in one
// gateway (as the gateway builds one per listener) share instances and
// their root context, that a plugin of the same VM with another
// configuration shares the instances with a root context of its own, and
// that the pool lives until the last of them is closed.
func TestPoolShared(t *testing.T) {
	env := envForTest(t)
	pb := pluginConf(t, "examples", mode("noop"))
	o := Options{PoolSize: 1, CloseDelay: -1}
	a, err := New(context.Background(), pb, env, o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(context.Background(), pb, env, o)
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(context.Background(), pluginConf(t, "examples", mode("addheader")), env, o)
	if err != nil {
		t.Fatal(err)
	}
	if a.pool != b.pool || a.plugin != b.plugin {
		t.Fatal("two factories of one plugin have two pools or two plugins")
	}
	if a.pool != other.pool || a.plugin == other.plugin {
		t.Fatal("plugins of one VM with different configurations: want one pool and two plugins")
	}
	a.Close()
	time.Sleep(10 * time.Millisecond)
	x := exchange()
	fl := b.NewFilter(x).(*filter)
	if st := fl.OnRequestHeaders(x, true); st != filters.Continue {
		t.Fatalf("the pool stopped with a factory still using it: %v %+v", st, x.LocalReply())
	}
	fl.OnDone(x)
	b.Close()
	other.Close()
	eventually(t, "the last factory's close to stop the pool", func() bool { return b.pool.inst.at(0) == nil })
}
