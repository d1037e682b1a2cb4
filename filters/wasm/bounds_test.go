package wasm

import (
	"strconv"
	"strings"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
)

// TestHostilePointers has a plugin call every hostcall with a pointer
// past its memory, or a length running past it, in a place where the
// call would otherwise succeed: each answers INVALID_MEMORY_ACCESS (a
// function the host lacks, which the plugin imports all the same,
// UNIMPLEMENTED), the instance lives on and the gateway keeps serving.
func TestHostilePointers(t *testing.T) {
	backend := startEcho(t, "backend")
	g := startGateway(t, []*hcmv3.HttpFilter{wasmFilter(t, pluginConf(t, "audit", "audit"))},
		hcmtest.StaticCluster("backend", backend.Addr()), hcmtest.StaticCluster("body", backend.Addr()))
	for _, c := range []struct {
		phase, body string
		calls       int
	}{
		{"headers", "", 46},
		{"body", "some body", 3},
	} {
		t.Run(c.phase, func(t *testing.T) {
			method := "GET"
			if c.body != "" {
				method = "POST"
			}
			r := do(t, method, g.url+"/", c.body, "x-hostile", c.phase)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			lines := strings.Split(strings.TrimSpace(r.body), "\n")
			if len(lines) != c.calls {
				t.Errorf("%d calls reported, want %d:\n%s", len(lines), c.calls, r.body)
			}
			for _, l := range lines {
				name, st, _ := strings.Cut(l, " ")
				want := "6"
				if name == "proxy_no_such_hostcall" {
					want = "12"
				}
				if st != want {
					t.Errorf("%s returned %s, want %s", name, st, want)
				}
			}
		})
	}
	// The instance is the same one, unharmed, and the request headers
	// the hostile calls aimed at are intact.
	if n := g.store.Counter("wasm.audit.vm_failures").Value(); n != 0 {
		t.Errorf("vm_failures = %d", n)
	}
	if n := g.store.Counter("wasm.audit.vm_created").Value(); n != 2 {
		t.Logf("vm_created = %d", n)
	}
	r := do(t, "GET", g.url+"/after", "", "x-keep", "yes")
	if r.status != 200 || r.echo(t).Headers["x-keep"] != "yes" {
		t.Errorf("after the hostile calls: status %d, %s", r.status, r.body)
	}
}

// TestHostcallFuzz has a plugin make thousands of hostcalls chosen at
// random, with null, wrapping, out-of-memory and random pointers and
// lengths: the host answers each with a status, the instance survives
// (no host panic, no crash) and its streams are served.
func TestHostcallFuzz(t *testing.T) {
	f := newFactory(t, pluginConf(t, "audit", "audit"), Options{PoolSize: 1})
	inst := f.pool.inst.at(0)
	for seed := 1; seed <= 20; seed++ {
		x := exchange("X-Fuzz", strconv.Itoa(seed))
		fl := f.NewFilter(x).(*filter)
		fl.OnRequestHeaders(x, true)
		fl.OnDone(x)
		r := x.LocalReply()
		if r == nil || r.Status != 200 || !strings.Contains(r.Body, ":") {
			t.Fatalf("seed %d: reply %+v, want the statuses the calls got", seed, r)
		}
		if seed == 1 {
			t.Logf("statuses (status:count) for seed 1: %s", r.Body)
		}
	}
	if v := f.pool.inst.at(0); v != inst || v.dead.Load() {
		t.Error("the instance died under the hostcalls")
	}
}
