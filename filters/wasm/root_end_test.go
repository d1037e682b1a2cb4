package wasm

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/waygate/waygate/gateway/hcm/hcmtest"
	"github.com/waygate/waygate/gateway/router"
	"github.com/waygate/waygate/gateway/upstream"
)

// TestRootContextsEnd checks the end of a root context's life: a plugin
// unloaded from a VM that runs on, and the last plugin of a VM that
// shuts down, get proxy_on_done then proxy_on_delete on their root
// contexts, as Envoy ends them (the plugin records each in shared data).
func TestRootContextsEnd(t *testing.T) {
	env := envForTest(t)
	o := Options{PoolSize: 1, CloseDelay: -1}
	vm := "ending_" + runName(t)
	first, err := New(t.Context(), pluginConf(t, "audit", "audit", rootID("first"), vmID(vm)), env, o)
	if err != nil {
		t.Fatal(err)
	}
	second, err := New(t.Context(), pluginConf(t, "audit", "audit", rootID("second"), vmID(vm)), env, o)
	if err != nil {
		t.Fatal(err)
	}
	// The second plugin's root context starts with its first stream.
	x := exchange()
	fl := second.NewFilter(x).(*filter)
	fl.OnRequestHeaders(x, true)
	fl.OnDone(x)

	shared := sharedFor(vm)
	ended := func(root string) bool {
		_, _, done := shared.get(root + "-done")
		_, _, deleted := shared.get(root + "-deleted")
		return done && deleted
	}
	first.Close()
	eventually(t, "the unloaded plugin's root context to end", func() bool { return ended("first") })
	if ended("second") {
		t.Fatal("the plugin still loaded had its root context ended")
	}
	second.Close()
	eventually(t, "the last plugin's root context to end with its VM", func() bool { return ended("second") })
}

// TestRootContextDrains unloads a plugin whose proxy_on_done returns
// false to finish an http call first: its root context lives on, the
// call's answer reaches it, and it is deleted once it calls proxy_done,
// while the VM serves its other plugin on. proxy_done from a context
// with nothing pending is NOT_FOUND.
func TestRootContextDrains(t *testing.T) {
	backend := startEcho(t, "backend")
	view := &hcmtest.View{Tables: map[string]*router.Table{}}
	var err error
	view.Clusters, err = upstream.NewManager().Build(map[string]*clusterv3.Cluster{"backend": hcmtest.StaticCluster("backend", backend.Addr())}, nil)
	if err != nil {
		t.Fatal(err)
	}
	env := envForTest(t)
	env.Upstream = viewUpstream{view}
	o := Options{PoolSize: 1, CloseDelay: -1}
	vm := "draining_" + runName(t)
	draining, err := New(t.Context(), pluginConf(t, "audit", "drain", rootID("draining"), vmID(vm)), env, o)
	if err != nil {
		t.Fatal(err)
	}
	staying := newFactoryEnv(t, pluginConf(t, "audit", "audit", rootID("staying"), vmID(vm)), env, o)

	shared := sharedFor(vm)
	value := func(key string) string {
		v, _, _ := shared.get(key)
		return string(v)
	}
	draining.Close()
	eventually(t, "the draining root context to be deleted", func() bool { return value("draining-deleted") != "" })
	if got := value("draining-deleted"); got != "after the answer" {
		t.Errorf("deleted %q, want after the call's answer", got)
	}
	if got := value("draining-proxy_done"); got != "0" {
		t.Errorf("proxy_done returned %q, want OK", got)
	}
	if value("staying-done") != "" {
		t.Error("the plugin staying loaded was ended")
	}
	// The VM serves on; proxy_done from a stream is NOT_FOUND.
	x := exchange("X-Abi", "misc")
	fl := staying.NewFilter(x).(*filter)
	fl.OnRequestHeaders(x, true)
	fl.OnDone(x)
	if r := x.LocalReply(); r == nil || !strings.Contains(r.Body, "done 1\n") {
		t.Errorf("misc answer %v, want proxy_done NOT_FOUND", r)
	}
}
