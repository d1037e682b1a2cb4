package istio

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a source waits for a burst of changes to
// settle before reloading: long enough to see an editor's write, rename
// and chmod as one change, short enough that an edit is served well
// within a second. It is istiod's default (PILOT_DEBOUNCE_AFTER).
const DefaultDebounce = 100 * time.Millisecond

// WatchDir loads dir and calls onChange with the result, then again
// after every change under it (files created, written, removed or
// renamed, including editors' save-by-rename and new subdirectories),
// once per burst of changes that settles for debounce (DefaultDebounce
// when zero). It returns when ctx is done.
//
// onChange receives the config as Accept makes it: only valid resources,
// the last valid version of a resource whose file is being edited into a
// broken state, and every finding. dir may not exist yet, or be removed
// and created again: while it is missing, the last config is kept and a
// finding says why. The directory is re-read whole on each
// change: a config directory is small, and a full reload cannot drift
// from what LoadDir would say. onChange is never called concurrently.
func WatchDir(ctx context.Context, dir string, debounce time.Duration, onChange func(*Config, []Finding)) {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		// Without notifications the directory is still served as loaded.
		slog.Error("cannot watch configuration directory", "dir", dir, "err", err)
	} else {
		defer w.Close()
		dir = filepath.Clean(dir)
		// The parent is watched too, for the directory itself being
		// created (WatchDir may start before it exists) or replaced
		// (rm -r and copy anew), which drops the watches under it.
		if err := w.Add(filepath.Dir(dir)); err != nil {
			slog.Warn("cannot watch the configuration directory's parent", "dir", filepath.Dir(dir), "err", err)
		}
		addTree(w, dir)
	}

	var prev *Config
	reload := func() {
		cfg, findings, err := LoadDir(dir)
		if err != nil {
			findings = []Finding{{Severity: Error, File: dir, Message: "cannot read the configuration directory: " + err.Error()}}
			cfg = newConfig()
			if prev != nil {
				// The directory itself is unreadable (being replaced,
				// say): keep serving what was last loaded.
				cfg = prev
			}
		}
		prev, findings = Accept(prev, cfg, findings)
		onChange(prev, findings)
	}
	reload()
	if w == nil {
		<-ctx.Done()
		return
	}

	timer := time.NewTimer(debounce)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			name := filepath.Clean(ev.Name)
			if ev.Has(fsnotify.Create) && inside(dir, name) {
				// A new directory (or one renamed into place) is watched
				// with everything already in it.
				addTree(w, name)
			}
			if name == dir || inside(dir, name) && relevant(dir, name) {
				timer.Reset(debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			// An overflow loses events: reload to be sure.
			slog.Warn("configuration directory watch", "dir", dir, "err", err)
			timer.Reset(debounce)
		case <-timer.C:
			reload()
		}
	}
}

// inside reports whether name is dir or under it.
func inside(dir, name string) bool {
	rel, err := filepath.Rel(dir, name)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// addTree watches path and every directory under it; path may be a file,
// in which case nothing is added.
func addTree(w *fsnotify.Watcher, path string) {
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if p != path && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if err := w.Add(p); err != nil {
			slog.Warn("cannot watch directory", "dir", p, "err", err)
		}
		return nil
	})
}

// relevant reports whether a change to name can change the config: a
// config file, or a directory (whose files come and go with it). Editor
// swap and backup files are ignored so that they do not cause reloads.
func relevant(root, name string) bool {
	rel, err := filepath.Rel(root, name)
	if err != nil {
		return true
	}
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == "..data" {
			// A Kubernetes ConfigMap or Secret volume: its files are
			// symlinks through ..data, which the kubelet swaps by rename
			// on every update; no event names the files themselves.
			return true
		}
		if strings.HasPrefix(part, ".") && part != "." {
			return false
		}
	}
	base := filepath.Base(name)
	if strings.HasSuffix(base, "~") {
		return false
	}
	if isConfigFile(name) || filepath.Ext(base) == "" {
		return true
	}
	st, err := os.Stat(name)
	return err == nil && st.IsDir()
}
