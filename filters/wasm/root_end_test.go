package wasm

import (
	"testing"
)

// TestRootContextsEnd checks the end of a root context's life: a plugin
// unloaded from a VM that runs on, and the last plugin of a VM that
// shuts down, get proxy_on_done then proxy_on_delete on their root
// contexts, as Envoy ends them (the plugin records each in shared data).
func TestRootContextsEnd(t *testing.T) {
	env := envForTest(t)
	o := Options{PoolSize: 1, CloseDelay: -1}
	vm := "ending_" + t.Name()
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
