package wasm

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"

	"github.com/waygate/waygate/filters"
	"github.com/waygate/waygate/gateway/hcm"
	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// loop sends well-behaved requests from a few clients until stopped and
// counts those that did not come back as 200 from the backend. A request
// in flight on an instance that another request crashed may come back
// without the plugin's response header (it finishes without the
// plugin), but never fails.
type loop struct {
	stop   context.CancelFunc
	wg     sync.WaitGroup
	ok     atomic.Int64
	errs   atomic.Int64
	mu     sync.Mutex
	sample []string
}

func startLoop(url string, clients int) *loop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loop{stop: cancel}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				r, err := try("GET", url+"/", "")
				switch {
				case err != nil:
					l.fail(err.Error())
				case r.status != 200:
					l.fail(r.body)
				default:
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *loop) fail(why string) {
	l.errs.Add(1)
	l.mu.Lock()
	if len(l.sample) < 5 {
		l.sample = append(l.sample, why)
	}
	l.mu.Unlock()
}

func (l *loop) finish(t *testing.T) {
	t.Helper()
	l.stop()
	l.wg.Wait()
	if n := l.errs.Load(); n > 0 {
		t.Errorf("%d of %d concurrent requests failed: %q", n, n+l.ok.Load(), l.sample)
	}
	if l.ok.Load() == 0 {
		t.Error("no concurrent request succeeded")
	}
}

// TestFaultIsolation crashes an instance in each way a plugin can and
// checks that only the faulty request suffers, with the plugin's fail
// strategy, while requests on other instances and later requests are
// served; the crashed instance is counted and replaced.
func TestFaultIsolation(t *testing.T) {
	// A small memory limit makes the memory bomb quick; its row gets a
	// long call deadline, so that only the memory limit can stop it in
	// time.
	t.Setenv(EnvMemoryLimitPages, "512")
	tests := []struct {
		fault   string
		open    bool
		status  int
		timeout time.Duration
	}{
		{"trap", false, 503, 0},
		{"panic", false, 503, 0},
		{"loop", false, 503, 0},
		{"oom", false, 503, 5 * time.Second},
		{"trap", true, 200, 0},
		{"panic", true, 200, 0},
		{"loop", true, 200, 0},
		{"oom", true, 200, 5 * time.Second},
	}
	for _, tt := range tests {
		name := tt.fault + " fail closed"
		if tt.open {
			name = tt.fault + " fail open"
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
			g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "faults", "", opts...))},
				hcmtest.StaticCluster("backend", echo.Addr()))
			l := startLoop(g.url, 4)
			// The loop has filled the pool; a new instance from now on is
			// the crashed one's replacement.
			time.Sleep(50 * time.Millisecond)
			created := g.store.Counter("wasm.faults.vm_created")
			before := created.Value()
			start := time.Now()
			r := do(t, "GET", g.url+"/", "", "x-fault", tt.fault)
			if took := time.Since(start); tt.timeout > 0 && took >= tt.timeout {
				t.Errorf("the fault ended by the call deadline (%v), not by its own failure", took)
			}
			if r.status != tt.status {
				t.Errorf("faulty request: status %d %q, want %d", r.status, r.body, tt.status)
			}
			if tt.open && r.echo(t).Service != "backend" {
				t.Errorf("fail open: the faulty request did not reach the backend")
			}
			failures := g.store.Counter("wasm.faults.vm_failures")
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

// TestConfigureFailureNACKs checks that a plugin failing
// proxy_on_configure is refused with its own message, so the config is
// NACKed, while the config already serving goes on.
func TestConfigureFailureNACKs(t *testing.T) {
	echo := startEcho(t, "backend")
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "faults", ""))},
		hcmtest.StaticCluster("backend", echo.Addr()))
	l := startLoop(g.url, 4)
	c := &hcm.Compiler{Env: filters.Env{Log: testLog(t)}}
	_, err := c.Compile(hcmtest.HCM(t, hcmtest.Routes(hcmtest.Prefix("/", "backend")),
		wasmFilter(t, pluginConf(t, "faults", "fail"))))
	if err == nil || !strings.Contains(err.Error(), "configuration rejected: fail was asked for") || !strings.Contains(err.Error(), "proxy_on_configure") {
		t.Errorf("compile error = %v, want the plugin's message", err)
	}
	_, err = c.Compile(hcmtest.HCM(t, hcmtest.Routes(hcmtest.Prefix("/", "backend")),
		wasmFilter(t, pluginConf(t, "examples", `{"mode":"headers"}`))))
	if err == nil || !strings.Contains(err.Error(), `expected {"header"`) {
		t.Errorf("compile error = %v, want the plugin's message", err)
	}
	time.Sleep(100 * time.Millisecond)
	l.finish(t)
}
