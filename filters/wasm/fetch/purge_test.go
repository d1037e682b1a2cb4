package fetch

import (
	"os"
	"testing"
	"time"
)

// wasmBytes is a minimal module: the magic and version.
var wasmBytes = []byte{0, 'a', 's', 'm', 1, 0, 0, 0}

func TestPurge(t *testing.T) {
	f := New(Options{Dir: t.TempDir(), PurgeInterval: -1})
	c := f.cache
	used, unused := "https://example.com/used.wasm", "https://example.com/unused.wasm"
	sum := sha256Hex(wasmBytes)
	for _, n := range []string{used, unused} {
		if err := c.put(n, sum, wasmBytes); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	for _, n := range []string{used, unused} {
		if err := os.Chtimes(c.modulePath(n, sum), old, old); err != nil {
			t.Fatal(err)
		}
	}
	// Reading a module from the cache is a use.
	if _, ok := c.module(used, sum); !ok {
		t.Fatal("the cached module was not read")
	}
	if n := c.purge(time.Now().Add(-DefaultModuleExpiry)); n != 1 {
		t.Errorf("purged %d modules, want the one unused", n)
	}
	if _, ok := c.module(used, sum); !ok {
		t.Error("the module in use was purged")
	}
	if _, err := os.Stat(c.modulePath(unused, sum)); !os.IsNotExist(err) {
		t.Errorf("the unused module is still there: %v", err)
	}
}

// A purge runs at most once per interval, and never with a negative
// one.
func TestMaybePurge(t *testing.T) {
	f := New(Options{Dir: t.TempDir(), PurgeInterval: time.Hour})
	now := time.Now()
	f.maybePurge(now)
	first := f.lastPurge.Load()
	if first != now.UnixNano() {
		t.Fatalf("no purge started")
	}
	f.maybePurge(now.Add(30 * time.Minute))
	if f.lastPurge.Load() != first {
		t.Error("a second purge within the interval")
	}
	f.maybePurge(now.Add(61 * time.Minute))
	if f.lastPurge.Load() == first {
		t.Error("no purge after the interval")
	}
	off := New(Options{Dir: t.TempDir(), PurgeInterval: -1})
	off.maybePurge(now)
	if off.lastPurge.Load() != 0 {
		t.Error("a purge with purging off")
	}
}
