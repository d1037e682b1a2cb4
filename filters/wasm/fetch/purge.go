package fetch

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Modules a gateway stopped using leave the cache, as istio-agent's
// WASM_MODULE_EXPIRY and WASM_PURGE_INTERVAL have them: a module is used
// when fetched or read from the cache (its file's modification time says
// when), and one unused for the expiry is removed. The Fetcher purges at
// most once per interval, in the background of a Get, so an idle process
// runs nothing. A tag whose module was purged makes the next Get fetch
// it again.

// Defaults of Options.ModuleExpiry and Options.PurgeInterval.
const (
	DefaultModuleExpiry  = 24 * time.Hour
	DefaultPurgeInterval = time.Hour
)

// touch marks a cached module used now.
func (c *cache) touch(name, sum string) {
	now := time.Now()
	_ = os.Chtimes(c.modulePath(name, sum), now, now)
}

// purge removes the modules unused since before cutoff. It reports how
// many it removed. Directories stay: removing one could race a module
// being written into it.
func (c *cache) purge(cutoff time.Time) int {
	root := filepath.Join(c.dir, "modules")
	removed := 0
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".wasm") {
			return nil
		}
		if info, err := d.Info(); err == nil && info.ModTime().Before(cutoff) && os.Remove(path) == nil {
			removed++
		}
		return nil
	})
	return removed
}

// maybePurge starts a purge when the last one is older than the
// interval.
func (f *Fetcher) maybePurge(now time.Time) {
	if f.opts.PurgeInterval < 0 {
		return
	}
	last := f.lastPurge.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < f.opts.PurgeInterval {
		return
	}
	if !f.lastPurge.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	go func() {
		if n := f.cache.purge(now.Add(-f.opts.ModuleExpiry)); n > 0 {
			f.log.Info("wasm module cache purged", "modules", n, "unused for", f.opts.ModuleExpiry)
		}
	}()
}
